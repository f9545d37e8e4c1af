"""The hits writer on SQLite and PostgreSQL: every awaited hit committed, in batches,
and a clean answer when the database is not there."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from mailbeacon.edge.responses import GIF
from mailbeacon.recorder import Hit, RecorderUnavailable, open_recorder
from mailbeacon.recorder.postgres import asyncpg_dsn
from mailbeacon.recorder.sqlite import stamp
from mailbeacon.settings import Settings
from mailbeacon.tokens import Kind


def _hit(s, n: int) -> Hit:
    return Hit(
        time.time(), "open", s.company_id, s.message_id, s.lead_id, None,
        "192.0.2.1", f"reader {n}".encode(), b"en\x00", "GET",
    )  # fmt: skip


async def test_every_awaited_hit_is_committed_in_batches(seeded, db_url: str) -> None:
    recorder = open_recorder(Settings(database_url=db_url, commit_batch_size=32))
    await recorder.start()
    await asyncio.gather(*(recorder.record(_hit(seeded, n)) for n in range(500)))
    assert recorder.committed == 500
    rows = await seeded.hits()  # read before close: a returned record() is already durable
    await recorder.close()
    assert sorted(r["user_agent"] for r in rows) == sorted(f"reader {n}" for n in range(500))
    assert {r["accept_language"] for r in rows} == {"en"}  # NUL dropped: PostgreSQL refuses it
    assert all(r["at"].year >= 2024 for r in rows)


async def test_headers_are_kept_trimmed_and_cut_to_size(seeded, db_url: str) -> None:
    recorder = open_recorder(Settings(database_url=db_url))
    await recorder.start()
    huge = Hit(
        time.time(), "open", seeded.company_id, seeded.message_id, seeded.lead_id, None,
        "192.0.2.1", b" Mozilla/5.0 " + b"x" * 5000, b"de-CH, " + b"en;q=0.5, " * 100, "GET",
    )  # fmt: skip
    await recorder.record(huge)
    [row] = await seeded.hits()
    await recorder.close()
    assert row["user_agent"].startswith("Mozilla/5.0 x") and len(row["user_agent"]) == 1000
    assert row["accept_language"].startswith("de-CH") and len(row["accept_language"]) == 200


def test_sqlite_timestamps_use_sqlalchemys_text_format() -> None:
    assert stamp(0.5) == "1970-01-01 00:00:00.500000"
    assert stamp(1_700_000_000.000001) == "2023-11-14 22:13:20.000001"


@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody@127.0.0.1:1/none", "sqlite:////proc/no-such-dir/hits.db"],
)
async def test_a_missing_database_fails_fast_and_cleanly(url: str) -> None:
    recorder = open_recorder(Settings(database_url=url))
    await recorder.start()  # does not raise: the edge keeps serving
    assert not recorder.available
    started = time.monotonic()
    with pytest.raises(RecorderUnavailable):
        await recorder.record(Hit(time.time(), "open", 1, 1, 1, None, None, None, None, "GET"))
    assert time.monotonic() - started < 0.5
    await recorder.close()


async def test_a_dropped_postgresql_connection_is_reconnected(seeded, db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: a server that drops the connection")
    recorder = open_recorder(Settings(database_url=db_url))
    await recorder.start()
    await recorder.record(_hit(seeded, 1))
    admin = await asyncpg.connect(asyncpg_dsn(db_url))
    await admin.execute("SELECT pg_terminate_backend($1)", recorder._conn.get_server_pid())
    await admin.close()
    await recorder.record(_hit(seeded, 2))  # reconnects and retries the batch once
    assert recorder.available and len(await seeded.hits()) == 2
    await recorder.close()


async def test_when_hits_cannot_be_kept_nothing_claims_a_hit_and_clicks_still_go(
    live, seeded_sqlite
) -> None:
    s = seeded_sqlite
    live.recorder._mark_down(RuntimeError("disk on fire"))  # as after a failed commit
    async with httpx.AsyncClient(base_url=live.base) as http:
        pixel = await http.get(f"/o/{s.token(Kind.OPEN)}.gif")
        click = await http.get(f"/c/{s.token(Kind.CLICK, 1)}")
    # The email still shows an invisible 1x1 image, but no 200 claims a kept hit...
    assert pixel.status_code == 503 and pixel.content == GIF
    # ...and the reader's link works: no 302 (it would claim a kept hit), but a page
    # that sends them on at once.
    assert click.status_code == 503 and "location" not in click.headers
    assert (
        '<meta http-equiv=refresh content="0;url=https://example.com/pricing?plan=pro">'
        in click.text
    )
    assert await s.hits() == []
