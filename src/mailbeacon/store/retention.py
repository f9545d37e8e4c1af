"""Retention: each company's raw hits, and its readers' addresses and user agents, live
only as long as the company says.

Per company (settings page, `PATCH /api/v1/company`):
- `hit_retention_days`: raw hits older than this are deleted. Events derived from them
  stay (with what `address_retention_days` leaves of them), so reports do not change;
  `enrich --rebuild` can only rebuild the events of hits that are left.
- `address_retention_days`: after this, the reader's IP address, user agent and
  Accept-Language are blanked on the hits still kept, the IP on events, and a forwarded
  reader counted by its address in `rollup_forward_readers` is renamed to a keyed
  digest (the count stays, the address goes). What was derived from them (country,
  city, client, device, verdict) stays.
The server's `MAILBEACON_HIT_RETENTION_DAYS` is a ceiling on addresses for every
company: the shorter of the two wins. 0 on either side sets no limit from that side.

A stage like the others: the process holding the "retention" lease runs a pass every
`retention_every_seconds`. A hit the enrich stage has not judged yet is never deleted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import partitions
from mailbeacon.store.db import Database, now
from mailbeacon.store.schema import companies, cursors, events, hits
from mailbeacon.store.schema_analytics import rollup_forward_readers

log = logging.getLogger("mailbeacon.retention")
STAGE = "retention"
ENRICH_CURSOR = "enrich"  # enrich.pipeline.STAGE (store may not import enrich)


@dataclass(frozen=True)
class Policy:
    """One company's retention, in days (0: no limit)."""

    company_id: int
    hit_days: int
    address_days: int


@dataclass
class Pass:
    """What one retention pass changed."""

    hits_deleted: int = 0
    addresses_forgotten: int = 0  # hit and event rows whose address or agent was blanked

    @property
    def changed(self) -> int:
        return self.hits_deleted + self.addresses_forgotten


def shortest(*days: int) -> int:
    """The strictest of several limits in days, where 0 means no limit."""
    limits = [d for d in days if d and d > 0]
    return min(limits) if limits else 0


async def policies(conn: AsyncConnection, server_address_days: int) -> list[Policy]:
    rows = await conn.execute(
        select(
            companies.c.id, companies.c.hit_retention_days, companies.c.address_retention_days
        ).order_by(companies.c.id)
    )
    return [
        Policy(
            r.id,
            max(r.hit_retention_days or 0, 0),
            shortest(r.address_retention_days, server_address_days),
        )
        for r in rows
    ]


def reader_digest(secret: bytes, ip: str) -> str:
    """A forwarded reader once their address is forgotten: still one distinct reader,
    no longer an address (keyed, so the 2^32 IPv4 addresses cannot be tried back)."""
    return "forgotten:" + hmac.new(secret, ip.encode(), hashlib.sha256).hexdigest()[:32]


async def _delete_hits(conn: AsyncConnection, company_id: int, cutoff: dt.datetime) -> int:
    judged = select(cursors.c.position).where(cursors.c.name == ENRICH_CURSOR).scalar_subquery()
    result = await conn.execute(
        delete(hits).where(hits.c.company_id == company_id, hits.c.at < cutoff, hits.c.id <= judged)
    )
    return result.rowcount or 0


async def _forget_forward_readers(
    conn: AsyncConnection, company_id: int, cutoff: dt.datetime, secret: bytes
) -> None:
    """Rename the forwarded readers counted by an address about to be forgotten, unless
    a newer event of the same message still shows that address."""
    newer = events.alias("newer")
    rows = await conn.execute(
        select(events.c.message_id, events.c.ip)
        .where(
            events.c.company_id == company_id,
            events.c.at < cutoff,
            events.c.forwarded.is_(True),
            events.c.ip.is_not(None),
            ~exists().where(
                and_(
                    newer.c.message_id == events.c.message_id,
                    newer.c.ip == events.c.ip,
                    newer.c.at >= cutoff,
                )
            ),
        )
        .distinct()
    )
    t = rollup_forward_readers
    for message_id, ip in rows:
        await conn.execute(
            update(t)
            .where(t.c.company_id == company_id, t.c.message_id == message_id, t.c.reader == ip)
            .values(reader=reader_digest(secret, ip))
        )


async def _forget_addresses(
    conn: AsyncConnection, company_id: int, cutoff: dt.datetime, secret: bytes
) -> int:
    await _forget_forward_readers(conn, company_id, cutoff, secret)
    changed = await conn.execute(
        update(hits)
        .where(
            hits.c.company_id == company_id,
            hits.c.at < cutoff,
            (hits.c.ip.is_not(None) | hits.c.user_agent.is_not(None))
            | hits.c.accept_language.is_not(None),
        )
        .values(ip=None, user_agent=None, accept_language=None)
    )
    on_events = await conn.execute(
        update(events)
        .where(events.c.company_id == company_id, events.c.at < cutoff, events.c.ip.is_not(None))
        .values(ip=None)
    )
    return (changed.rowcount or 0) + (on_events.rowcount or 0)


async def enforce(db: Database, settings: Settings, at: dt.datetime | None = None) -> Pass:
    """One pass over every company: delete old hits, forget old addresses and agents.
    Each company in its own short transaction, so SQLite's write lock is never held long."""
    at = at or now()
    secret = settings.secret_keys[0][1] if settings.secret_keys else b"mailbeacon-retention"
    async with db.connect() as conn:
        every = await policies(conn, settings.hit_retention_days)
    # PostgreSQL: months ahead made ready, and months every company has expired dropped
    # whole (store.partitions); the row DELETEs below do the rest.
    await partitions.maintain(db, [p.hit_days for p in every], at)
    done = Pass()
    for policy in every:
        if not policy.hit_days and not policy.address_days:
            continue
        async with db.begin() as conn:
            if policy.hit_days:
                cutoff = at - dt.timedelta(days=policy.hit_days)
                done.hits_deleted += await _delete_hits(conn, policy.company_id, cutoff)
            if policy.address_days:
                cutoff = at - dt.timedelta(days=policy.address_days)
                done.addresses_forgotten += await _forget_addresses(
                    conn, policy.company_id, cutoff, secret
                )
    return done


async def _pass(db: Database, settings: Settings) -> int:
    """One pass, logged; 0 always: the next waits `retention_every_seconds`."""
    done = await enforce(db, settings)
    if done.changed:
        log.info(
            "retention: deleted %d raw hits, forgot %d readers' addresses",
            done.hits_deleted,
            done.addresses_forgotten,
        )
    return 0


def stage(settings: Settings) -> Stage:
    """A pass every `retention_every_seconds` (10 min) while this process holds the
    lease, which lasts two of them: it is renewed at each pass."""
    every = settings.retention_every_seconds
    return Stage(STAGE, _pass, poll=every, lease_seconds=every * 2)


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    await run_stage(stage(settings), db, settings, stop)
