"""PostgreSQL at volume: `hits` and `events` partitioned by month (migration 0015).

On a database with rows: migrating up keeps every row and id, makes this month and
three ahead, and puts a row no month covers in the DEFAULT partition; retention drops a
month whole once every company's hit retention has expired it (and never while one
company keeps hits for ever, or enrich has not judged it); a month added after its rows
arrived takes them out of DEFAULT; the COPY event writer is idempotent and keeps order;
migrating down gives the plain tables back with every row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from mailbeacon.crm.companies import create_company
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.bulk import copy_events, insert_events
from mailbeacon.store.migrate import alembic_config
from mailbeacon.store.partitions import (
    add_months,
    ensure_partitions,
    month_start,
    partition_name,
    partitions,
)
from mailbeacon.store.retention import enforce
from mailbeacon.store.schema import companies, cursors, events, hits
from testkit.pg import reset_schema

THIS_MONTH = month_start(now())
LONG_AGO = dt.datetime(2001, 5, 17, 12, 0)  # no month of its own: DEFAULT


def _move(conn: Connection, target: str, down: bool = False) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    (command.downgrade if down else command.upgrade)(cfg, target)


@pytest.fixture
async def pg(pg_database: str) -> AsyncIterator[Database]:
    """A PostgreSQL database with an empty schema, not migrated."""
    await reset_schema(pg_database)
    db = Database(pg_database)
    try:
        yield db
    finally:
        await db.dispose()


async def _migrate(db: Database, target: str = "head", down: bool = False) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_move, target, down)


def _hit(at: dt.datetime, company_id: int = 1, message_id: int = 1) -> dict[str, Any]:
    return {"at": at, "kind": "open", "company_id": company_id, "message_id": message_id,
            "lead_id": 1, "ip": "203.0.113.9", "method": "GET"}  # fmt: skip


def _event(hit_id: int, at: dt.datetime, company_id: int = 1, **more: Any) -> dict[str, Any]:
    return {"hit_id": hit_id, "type": "open", "at": at, "company_id": company_id,
            "message_id": 1, "lead_id": 1, "verdict": "human", "reason": "",
            "inferred": False, "forwarded": False} | more  # fmt: skip


async def _add_hits(db: Database, ats: list[dt.datetime], company_id: int = 1) -> list[int]:
    """Hits and their open events; the hits' ids."""
    ids = []
    async with db.begin() as conn:
        for at in ats:
            hit_id = await conn.scalar(
                insert(hits).values(**_hit(at, company_id)).returning(hits.c.id)
            )
            await conn.execute(insert(events).values(**_event(hit_id, at, company_id)))
            ids.append(hit_id)
    return ids


async def _where(db: Database, table: Any, row_id: int) -> str:
    """The partition a row is stored in."""
    async with db.connect() as conn:
        return await conn.scalar(
            text(f"SELECT CAST(tableoid::regclass AS text) FROM {table.name} WHERE id = :i"),
            {"i": row_id},
        )


async def _relkind(db: Database, table: str) -> str:
    async with db.connect() as conn:
        return await conn.scalar(
            text("SELECT CAST(relkind AS text) FROM pg_class WHERE relname = :t"), {"t": table}
        )


async def _months(db: Database, table: str = "hits") -> set[dt.datetime | None]:
    async with db.connect() as conn:
        return {p.lower for p in await conn.run_sync(partitions, table)}


async def _everything(db: Database) -> tuple[list[Any], list[Any]]:
    async with db.connect() as conn:
        h = (await conn.execute(select(hits).order_by(hits.c.id))).all()
        e = (await conn.execute(select(events).order_by(events.c.id))).all()
    return h, e


async def test_migrating_up_and_down_keeps_every_row(pg: Database) -> None:
    await _migrate(pg, "0007")
    two_months_ago = add_months(THIS_MONTH, -2) + dt.timedelta(days=3, hours=5)
    ats = [now() - dt.timedelta(minutes=5), two_months_ago, LONG_AGO]
    await _add_hits(pg, ats)
    before = await _everything(pg)
    assert len(before[0]) == len(before[1]) == 3

    await _migrate(pg)
    assert await _everything(pg) == before
    for table in ("hits", "events"):
        assert await _relkind(pg, table) == "p"
        months = await _months(pg, table)
        ahead = {add_months(THIS_MONTH, n) for n in range(4)}  # this month and 3 ahead
        assert ahead | {add_months(THIS_MONTH, -2), None} <= months  # None: DEFAULT
    hit_ids = [h.id for h in before[0]]
    assert await _where(pg, hits, hit_ids[1]) == partition_name("hits", add_months(THIS_MONTH, -2))
    assert await _where(pg, hits, hit_ids[2]) == "hits_default"

    # New rows: ids go on from the same sequence; an odd timestamp still lands somewhere.
    [odd] = await _add_hits(pg, [dt.datetime(1999, 1, 1)])
    assert odd == max(hit_ids) + 1
    assert await _where(pg, hits, odd) == "hits_default"
    assert await _where(pg, events, before[1][-1].id + 1) == "events_default"
    # Re-writing an event of a hit is still refused (hit_id, type, at): enrich's guarantee.
    async with pg.begin() as conn:
        assert await insert_events(conn, [_event(odd, dt.datetime(1999, 1, 1))]) == 0
    after = await _everything(pg)

    await _migrate(pg, "0007", down=True)
    for table in ("hits", "events"):
        assert await _relkind(pg, table) == "r"
    assert await _everything(pg) == after
    [again] = await _add_hits(pg, [now()])
    assert again == odd + 1
    await _migrate(pg)  # and up again, with the months the rows need
    assert len((await _everything(pg))[0]) == len(after[0]) + 1


async def test_a_month_added_late_takes_its_rows_out_of_default(pg: Database) -> None:
    await _migrate(pg)
    later = add_months(THIS_MONTH, 6)
    [early] = await _add_hits(pg, [later + dt.timedelta(days=2)])
    assert await _where(pg, hits, early) == "hits_default"
    async with pg.begin() as conn:
        created = await conn.run_sync(lambda c: ensure_partitions(c, today=later))
        assert partition_name("hits", later) in created
        assert await conn.run_sync(lambda c: ensure_partitions(c, today=later)) == []
    assert await _where(pg, hits, early) == partition_name("hits", later)
    assert await _where(pg, events, early) == partition_name("events", later)


async def _company(db: Database, name: str, hit_days: int) -> int:
    async with db.begin() as conn:
        company = await create_company(conn, name, "trial")
        await conn.execute(
            update(companies).where(companies.c.id == company).values(hit_retention_days=hit_days)
        )
    return company


async def _set_days(db: Database, company: int, hit_days: int) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(companies).where(companies.c.id == company).values(hit_retention_days=hit_days)
        )


async def _judged(db: Database, position: int) -> None:
    """Where the enrich cursor stands: hits up to `position` are judged."""
    async with db.begin() as conn:
        await conn.execute(
            pg_insert(cursors)
            .values(name="enrich", position=position, updated_at=now())
            .on_conflict_do_update(index_elements=["name"], set_={"position": position})
        )


async def test_retention_drops_a_month_only_when_every_company_has_expired_it(
    pg: Database, tmp_path: Any
) -> None:
    await _migrate(pg)
    settings = Settings(database_url=pg.url, var_dir=tmp_path)
    old = add_months(THIS_MONTH, -6)
    async with pg.begin() as conn:
        await conn.run_sync(lambda c: ensure_partitions(c, also=[old]))
    brief = await _company(pg, "Brief", 30)
    forever = await _company(pg, "Forever", 0)
    old_ids = await _add_hits(pg, [old + dt.timedelta(days=1)], brief)
    old_ids += await _add_hits(pg, [old + dt.timedelta(days=2)], forever)
    recent = await _add_hits(pg, [now() - dt.timedelta(hours=1)], brief)
    month = partition_name("hits", old)

    # One company keeps hits for ever: the month stays; the other's rows go row by row.
    await _judged(pg, max(recent))
    await enforce(pg, settings)
    assert old in await _months(pg)
    async with pg.connect() as conn:
        left = (await conn.execute(select(hits.c.company_id).where(hits.c.at < THIS_MONTH))).all()
    assert [r.company_id for r in left] == [forever]

    # Now every company deletes after at most 90 days, but enrich has not judged the
    # month's last hit: it stays.
    await _set_days(pg, forever, 90)
    await _judged(pg, old_ids[0])
    await enforce(pg, settings)
    assert old in await _months(pg)

    # Judged: the whole month goes, as a table; the recent hit and every event stay.
    await _judged(pg, max(recent))
    await enforce(pg, settings)
    assert old not in await _months(pg)
    async with pg.connect() as conn:
        assert not await conn.scalar(text("SELECT to_regclass(:n)"), {"n": month})
        assert (await conn.execute(select(hits.c.id))).scalars().all() == recent
        assert await conn.scalar(select(func.count()).select_from(events)) == 3
    assert add_months(THIS_MONTH, 3) in await _months(pg)  # and the months ahead are there


async def test_the_month_holding_the_top_id_is_never_dropped(pg: Database, tmp_path: Any) -> None:
    """The highest hit id stays (store.tombstones), even in an expired month."""
    await _migrate(pg)
    settings = Settings(database_url=pg.url, var_dir=tmp_path)
    old = add_months(THIS_MONTH, -6)
    async with pg.begin() as conn:
        await conn.run_sync(lambda c: ensure_partitions(c, also=[old]))
    company = await _company(pg, "Brief", 30)
    [top] = await _add_hits(pg, [old + dt.timedelta(days=1)], company)
    await _judged(pg, top)
    await enforce(pg, settings)
    assert old in await _months(pg)


async def test_a_drop_that_cannot_get_its_lock_waits_for_the_next_pass(
    pg: Database, pg_database: str, tmp_path: Any
) -> None:
    """A long reader of `hits` holds the DETACH off: the pass gives up on it within the
    lock timeout (the edge's inserts never queue behind it for long) and goes on."""
    await _migrate(pg)
    settings = Settings(database_url=pg.url, var_dir=tmp_path)
    old = add_months(THIS_MONTH, -6)
    async with pg.begin() as conn:
        await conn.run_sync(lambda c: ensure_partitions(c, also=[old]))
    company = await _company(pg, "Brief", 30)
    await _add_hits(pg, [old + dt.timedelta(days=1)], company)
    recent = await _add_hits(pg, [now()], company)
    await _judged(pg, max(recent))
    reader = await asyncpg.connect(pg_database)
    try:
        async with reader.transaction():
            await reader.fetchval("SELECT count(*) FROM hits")  # ACCESS SHARE until commit
            await enforce(pg, settings)
            assert old in await _months(pg)
    finally:
        await reader.close()
    await enforce(pg, settings)
    assert old not in await _months(pg)


def _events(hit_ids: list[int], at: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for n, hit_id in enumerate(hit_ids):
        rows.append(_event(hit_id, at + dt.timedelta(seconds=n), client="Apple Mail"))
        if n % 3 == 0:  # an inferred open beside a click, as enrich writes them
            rows.append(_event(hit_id, at + dt.timedelta(seconds=n), type="click", url="u"))
    return rows


async def test_copy_events_is_idempotent_and_keeps_order(pg: Database) -> None:
    await _migrate(pg)
    at = now() - dt.timedelta(hours=1)
    rows = _events(list(range(1, 301)), at)
    async with pg.begin() as conn:
        assert await copy_events(conn, rows[:150]) == 150
        assert await copy_events(conn, rows) == len(rows) - 150  # twice in one transaction
    async with pg.begin() as conn:
        assert await copy_events(conn, rows) == 0  # a re-run writes nothing
    async with pg.connect() as conn:
        got = (
            await conn.execute(
                select(events.c.hit_id, events.c.type, events.c.client, events.c.reason)
                .order_by(events.c.id)
            )
        ).all()  # fmt: skip
    assert [(r.hit_id, r.type) for r in got] == [(r["hit_id"], r["type"]) for r in rows]
    assert got[0].client == "Apple Mail" and got[0].reason == ""
    # A rolled-back COPY leaves nothing behind.
    with pytest.raises(RuntimeError):
        async with pg.begin() as conn:
            await copy_events(conn, _events([1000, 1001], at))
            raise RuntimeError
    async with pg.connect() as conn:
        assert await conn.scalar(select(func.count()).where(events.c.hit_id >= 1000)) == 0


async def test_sqlite_keeps_plain_tables(sqlite_url: str, tmp_path: Any) -> None:
    """SQLite: migration 0015 changes nothing, partition upkeep is a no-op and the event
    writer falls back to the row INSERT, still idempotent."""
    db = Database(sqlite_url)
    try:
        async with db.begin() as conn:
            assert await conn.run_sync(lambda c: ensure_partitions(c)) == []
            ddl = await conn.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'events'"))
            assert "PRIMARY KEY (id)" in ddl and "UNIQUE (hit_id, type)" in ddl
            rows = _events(list(range(1, 101)), now())
            assert await insert_events(conn, rows) > 0
            await insert_events(conn, rows)
        async with db.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(events)) == len(rows)
        settings = Settings(database_url=sqlite_url, var_dir=tmp_path)
        assert (await enforce(db, settings)).changed == 0
    finally:
        await db.dispose()
