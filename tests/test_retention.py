"""Retention: nothing personal outlives the company's settings.

Three companies with different settings, each with hits and events 1, 5, 9 and 30 days
old. After the retention stage runs: no raw hit older than the company's
`hit_retention_days`, no address, user agent or Accept-Language older than its
`address_retention_days`, on hits or events; everything younger, and everything the
settings keep for ever, untouched; what was derived (country, client) stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select, update

from mailbeacon.crm.companies import create_company
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store import stages as lease
from mailbeacon.store.retention import enforce, reader_digest, run_forever
from mailbeacon.store.schema import companies, cursors, events, hits
from mailbeacon.store.schema_analytics import rollup_forward_readers

AGES = (1, 5, 9, 30)
IP, UA, LANG = "203.0.113.9", "Mozilla/5.0 (Macintosh)", "fr-FR"
# company -> (hit_retention_days, address_retention_days)
SETTINGS = {"Strict": (7, 3), "Addresses only": (0, 10), "Keeps all": (0, 0)}


async def _hit_and_event(conn: Any, company_id: int, days_ago: int, message_id: int) -> None:
    at = now() - dt.timedelta(days=days_ago)
    hit = await conn.execute(
        insert(hits)
        .values(at=at, kind="open", company_id=company_id, message_id=message_id, lead_id=1,
                ip=IP, user_agent=UA, accept_language=LANG, method="GET")
        .returning(hits.c.id)
    )  # fmt: skip
    await conn.execute(
        insert(events).values(
            hit_id=hit.scalar_one(), type="open", at=at, company_id=company_id,
            message_id=message_id, lead_id=1, verdict="human", reason="", inferred=False,
            forwarded=True, country="FR", client="Apple Mail", ip=IP,
        )
    )  # fmt: skip


async def _world(db: Database) -> dict[str, int]:
    ids = {}
    async with db.begin() as conn:
        for n, (name, (hit_days, address_days)) in enumerate(SETTINGS.items()):
            ids[name] = company = await create_company(conn, name, "trial")
            await conn.execute(
                update(companies)
                .where(companies.c.id == company)
                .values(hit_retention_days=hit_days, address_retention_days=address_days)
            )
            for age in AGES:
                await _hit_and_event(conn, company, age, message_id=100 * n + age)
            # A forwarded reader counted by their address on the oldest message.
            await conn.execute(
                insert(rollup_forward_readers).values(
                    campaign_id=1, message_id=100 * n + 30, reader=IP, company_id=company
                )
            )
        # The enrich stage has judged every hit so far.
        top = await conn.scalar(select(func.max(hits.c.id)))
        await conn.execute(insert(cursors).values(name="enrich", position=top, updated_at=now()))
    return ids


async def _ages(db: Database, table: Any, company_id: int, personal: bool = False) -> list[int]:
    """The ages in days of the company's rows (only those holding personal data)."""
    q = select(table.c.at).where(table.c.company_id == company_id)
    if personal:
        q = q.where(table.c.ip.is_not(None))
    async with db.connect() as conn:
        rows = (await conn.execute(q)).scalars().all()
    return sorted(round((now() - at).total_seconds() / 86400) for at in rows)


async def test_nothing_outlives_each_companys_settings(db: Database, settings: Settings) -> None:
    ids = await _world(db)

    # The stage itself, holding its lease, until its first pass is visible.
    stop = asyncio.Event()
    stage = asyncio.create_task(run_forever(db, settings, stop))
    for _ in range(200):
        if await _ages(db, hits, ids["Strict"]) == [1, 5]:
            break
        await asyncio.sleep(0.05)
    assert not await lease.acquire(db, "retention", "someone else")  # the stage holds it
    stop.set()
    await asyncio.wait_for(stage, timeout=10)

    # Raw hits: none older than hit_retention_days; all kept where it is 0.
    assert await _ages(db, hits, ids["Strict"]) == [1, 5]
    assert await _ages(db, hits, ids["Addresses only"]) == list(AGES)
    assert await _ages(db, hits, ids["Keeps all"]) == list(AGES)
    # Addresses on hits and events: none older than address_retention_days.
    for table in (hits, events):
        assert await _ages(db, table, ids["Strict"], personal=True) == [1]
        assert await _ages(db, table, ids["Addresses only"], personal=True) == [1, 5, 9]
        assert await _ages(db, table, ids["Keeps all"], personal=True) == list(AGES)
    async with db.connect() as conn:
        raw = (await conn.execute(select(hits).order_by(hits.c.id))).mappings().all()
        derived = (await conn.execute(select(events.c.country, events.c.client))).all()
        t = rollup_forward_readers
        readers = dict((await conn.execute(select(t.c.company_id, t.c.reader))).all())
        assert len(derived) == len(AGES) * len(SETTINGS)  # events stay when their hit goes
    for row in raw:  # the agent and language go with the address, never apart from it
        assert (
            (row["ip"] is None) == (row["user_agent"] is None) == (row["accept_language"] is None)
        )
    assert set(derived) == {("FR", "Apple Mail")}  # what was derived from them stays
    # The forwarded reader still counts once, no longer by their address.
    secret = settings.secret_keys[0][1]
    assert readers[ids["Strict"]] == reader_digest(secret, IP)
    assert readers[ids["Addresses only"]] == reader_digest(secret, IP)
    assert readers[ids["Keeps all"]] == IP

    assert (await enforce(db, settings)).changed == 0  # a second pass finds nothing


async def test_the_server_limit_caps_every_company_and_unjudged_hits_wait(
    db: Database, settings: Settings
) -> None:
    ids = await _world(db)
    async with db.begin() as conn:  # a hit the enrich stage has not read yet
        await _hit_and_event(conn, ids["Strict"], 30, message_id=999)

    done = await enforce(db, settings.with_(hit_retention_days=2))

    assert await _ages(db, hits, ids["Strict"]) == [1, 5, 30]  # the unjudged one waits
    for name in SETTINGS:  # the server's 2 days is shorter than every company's setting
        assert await _ages(db, events, ids[name], personal=True) == [1]
    assert done.hits_deleted == 2
