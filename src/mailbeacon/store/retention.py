"""Retention: readers' addresses are forgotten after a company's retention period.

An IP address is personal data; it is needed for a while (place, forward detection,
scanner networks) and then only as a liability. After `hit_retention_days` (per
company, else `MAILBEACON_HIT_RETENTION_DAYS`; 0 keeps them) the address is erased
from raw hits and from events. Everything derived from it (country, city, verdict)
stays. An `enrich --rebuild` after that cannot place those old hits again.
(`MAILBEACON_ANONYMIZE_IP` is the stronger setting: addresses are cut to a /24 or /48
before they are ever written.)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import select, update

from mailbeacon.settings import Settings
from mailbeacon.store import stages
from mailbeacon.store.db import Database, now
from mailbeacon.store.schema import companies, events, hits

log = logging.getLogger("mailbeacon.retention")
EVERY_SECONDS = 600.0


async def forget_addresses(db: Database, default_days: int, at: dt.datetime | None = None) -> int:
    """Erase addresses older than each company's retention; the number of rows changed."""
    at = at or now()
    changed = 0
    async with db.begin() as conn:
        rows = (await conn.execute(select(companies.c.id, companies.c.hit_retention_days))).all()
        for company_id, days in rows:
            days = days or default_days
            if days <= 0:
                continue
            cutoff = at - dt.timedelta(days=days)
            for table in (hits, events):
                result = await conn.execute(
                    update(table)
                    .where(
                        table.c.company_id == company_id,
                        table.c.at < cutoff,
                        table.c.ip.is_not(None),
                    )
                    .values(ip=None)
                )
                changed += result.rowcount or 0
    return changed


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    holder = stages.holder_id()
    while not stop.is_set():
        if await stages.acquire(db, "retention", holder, EVERY_SECONDS * 2):
            n = await forget_addresses(db, settings.hit_retention_days)
            if n:
                log.info("retention: forgot %d readers' addresses", n)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=EVERY_SECONDS)
