"""Readers' addresses are forgotten after the retention period; what they told stays."""

import datetime as dt

from sqlalchemy import insert, select, update

from mailbeacon.crm.companies import create_company
from mailbeacon.store import Database, now
from mailbeacon.store.retention import forget_addresses
from mailbeacon.store.schema import companies, events, hits


async def _hit_and_event(db: Database, company_id: int, days_ago: int) -> None:
    at = now() - dt.timedelta(days=days_ago)
    async with db.begin() as conn:
        hit = await conn.execute(
            insert(hits)
            .values(at=at, kind="open", company_id=company_id, message_id=1, lead_id=1,
                    ip="203.0.113.9", method="GET")
            .returning(hits.c.id)
        )  # fmt: skip
        await conn.execute(
            insert(events).values(
                hit_id=hit.scalar_one(), type="open", at=at, company_id=company_id,
                message_id=1, lead_id=1, verdict="human", reason="", inferred=False,
                forwarded=False, country="FR", ip="203.0.113.9",
            )
        )  # fmt: skip


async def test_addresses_older_than_retention_are_erased_per_company(db: Database) -> None:
    async with db.begin() as conn:
        strict = await create_company(conn, "Strict", "trial")
        default = await create_company(conn, "Default", "trial")
        await conn.execute(
            update(companies).where(companies.c.id == strict).values(hit_retention_days=7)
        )
    for company in (strict, default):
        await _hit_and_event(db, company, days_ago=30)
        await _hit_and_event(db, company, days_ago=1)

    assert await forget_addresses(db, default_days=0) == 2  # the strict company's old hit+event
    assert await forget_addresses(db, default_days=0) == 0  # idempotent
    assert await forget_addresses(db, default_days=14) == 2  # the server default for the rest

    async with db.connect() as conn:
        kept = (
            await conn.execute(select(events.c.ip, events.c.country).order_by(events.c.id))
        ).all()
        raw = (await conn.execute(select(hits.c.ip).order_by(hits.c.id))).scalars().all()
    assert raw == [None, "203.0.113.9", None, "203.0.113.9"]
    assert [k.ip for k in kept] == [None, "203.0.113.9", None, "203.0.113.9"]
    assert {k.country for k in kept} == {"FR"}  # the place stays; the address goes
