"""The rollups stage: reads events by increasing id and keeps the report counters current.

Each batch is read and computed holding no lock, then written in one short transaction
that also moves the `rollups` cursor, so a crash between batches loses nothing and a
replayed batch is impossible: the counters and the cursor commit together or not at all.
The write starts with a compare-and-set on the cursor row, which takes the write lock
(SQLite) or the row lock (PostgreSQL): a second runner that read the same batch finds the
cursor moved, writes nothing and reads again; the lease only keeps it from spinning.
(On SQLite the write lock is the database's one, which the edge's hits writer needs
every few milliseconds: nothing slow happens while it is held.)

`rebuild()` empties the rollups and replays every event, through the same code path: run
it after `enrich --rebuild` rewrites events (or `mailbeacon report rebuild-rollups`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.rules import (
    Fact,
    LeadState,
    advance,
    counts,
    forwarded_reader,
    unique_deltas,
)
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now, stages
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema import campaigns, cursors, events, leads, messages
from mailbeacon.store.schema_analytics import (
    NO_CLIENT,
    NO_LINK,
    rollup_campaign_leads,
    rollup_counts,
    rollup_forward_readers,
    rollup_message_events,
)

CURSOR = "rollups"
BATCH = Settings.rollups_batch_size
IN_CHUNK = 5000
# Every table this stage keeps: emptied together by a rebuild.
ROLLUP_TABLES = (
    rollup_counts,
    rollup_campaign_leads,
    rollup_forward_readers,
    rollup_message_events,
)
STATE_FIELDS = ("any_open", "human_open", "inferred_open", "human_click", "unsubscribed")
EVENT_COLUMNS = (
    events.c.id,
    events.c.type,
    events.c.at,
    events.c.company_id,
    events.c.campaign_id,
    events.c.lead_id,
    events.c.message_id,
    events.c.verdict,
    events.c.reason,
    events.c.inferred,
    events.c.forwarded,
    events.c.client,
    events.c.device,
    events.c.os,
    events.c.country,
    events.c.ip,
    events.c.url,
    events.c.link_index,
)


async def _lookup(conn: AsyncConnection, col: Any, ids: Iterable[int], *cols: Any) -> dict:
    out = {}
    for chunk in _chunks(list(set(ids))):
        rows = await conn.execute(select(col, *cols).where(col.in_(chunk)))
        out.update({r[0]: r[1:] for r in rows})
    return out


def _chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    # Long IN lists are cut: asyncpg takes at most 32767 parameters per statement.
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def load_facts(conn: AsyncConnection, rows: Sequence[Any]) -> list[Fact]:
    """Campaign events with their lead's timezone and their message's send time."""
    rows = [r for r in rows if r.campaign_id is not None]
    tz = await _lookup(conn, leads.c.id, (r.lead_id for r in rows), leads.c.timezone)
    msg = await _lookup(
        conn,
        messages.c.id,
        (r.message_id for r in rows),
        messages.c.sent_at,
        messages.c.forwarded_from_message_id,
    )
    camp = await _lookup(conn, campaigns.c.id, (r.campaign_id for r in rows), campaigns.c.sent_at)
    facts = []
    for r in rows:
        sent_at, forwarded_from = msg.get(r.message_id, (None, None))
        facts.append(
            Fact(
                **{k: v for k, v in r._mapping.items() if k in Fact.__slots__},
                friend_copy=forwarded_from is not None,
                lead_tz=tz.get(r.lead_id, (None,))[0],
                sent_at=sent_at or camp.get(r.campaign_id, (None,))[0],
            )
        )
    return facts


@dataclass(slots=True)
class Changes:
    """What one batch of facts does to the rollups: computed first, then written."""

    lead_states: list[dict] = field(default_factory=list)
    forward_readers: list[dict] = field(default_factory=list)
    counts: list[dict] = field(default_factory=list)
    message_events: list[dict] = field(default_factory=list)


async def apply_facts(conn: AsyncConnection, facts: Sequence[Fact]) -> None:
    """Add a batch of facts to the rollups (the caller owns the transaction)."""
    await write_changes(conn, await plan_changes(conn, facts))


async def plan_changes(conn: AsyncConnection, facts: Sequence[Fact]) -> Changes:
    """Read the rollups' current state for these facts and compute the rows to write."""
    changes = Changes()
    if not facts:
        return changes
    company = {f.campaign_id: f.company_id for f in facts}
    delta: dict[tuple[int, str, str], int] = defaultdict(int)
    for f in facts:
        for dim, key in counts(f):
            delta[(f.campaign_id, dim, key)] += 1
    changes.lead_states = await _plan_lead_states(conn, facts, company, delta)
    changes.forward_readers = await _plan_forward_readers(conn, facts, company, delta)
    changes.counts = [
        {"campaign_id": c, "dim": d, "key": k, "company_id": company[c], "n": n}
        for (c, d, k), n in delta.items()
        if n
    ]
    changes.message_events = plan_message_events(facts)
    return changes


KEY_COLUMNS = ("message_id", "type", "verdict", "inferred", "forwarded", "client", "link_index")


def message_event_key(f: Fact) -> tuple[Any, ...]:
    """The group of `rollup_message_events` an event counts in (its key columns)."""
    client = NO_CLIENT if f.client is None else f.client
    link = NO_LINK if f.link_index is None else f.link_index
    return (f.message_id, f.type, f.verdict, bool(f.inferred), bool(f.forwarded), client, link)


def plan_message_events(facts: Sequence[Fact]) -> list[dict]:
    """The batch's events folded into their groups; `write_changes` adds them in."""
    groups: dict[tuple[Any, ...], dict] = {}
    for f in facts:
        key = message_event_key(f)
        g = groups.get(key)
        if g is None:
            groups[key] = dict(zip(KEY_COLUMNS, key, strict=True)) | {
                "campaign_id": f.campaign_id,
                "lead_id": f.lead_id,
                "company_id": f.company_id,
                "url": f.url,
                "n": 1,
                "first_at": f.at,
                "last_at": f.at,
                "reason": f.reason or "",
            }
            continue
        g["n"] += 1
        g["first_at"], g["last_at"] = min(g["first_at"], f.at), max(g["last_at"], f.at)
        g["reason"] = min(g["reason"], f.reason or "")
        # One URL per link of a message; MAX as the bulk build takes it, should two differ.
        g["url"] = max(g["url"] or f.url or "", f.url or "") or None
    return list(groups.values())


async def write_changes(conn: AsyncConnection, changes: Changes) -> None:
    """Write what `plan_changes` computed: statements only, no reads, so it is short."""
    if changes.lead_states:
        t = rollup_campaign_leads
        stmt = dialect_insert(conn, t)
        # An older event in a later batch must not move the latest one back.
        newest, kept = stmt.excluded.last_at, func.coalesce(t.c.last_at, stmt.excluded.last_at)
        greater = func.max if conn.dialect.name == "sqlite" else func.greatest
        stmt = stmt.on_conflict_do_update(
            index_elements=["campaign_id", "lead_id"],
            set_={k: stmt.excluded[k] for k in STATE_FIELDS} | {"last_at": greater(kept, newest)},
        )
        await conn.execute(stmt, changes.lead_states)
    if changes.forward_readers:
        await conn.execute(rollup_forward_readers.insert(), changes.forward_readers)
    if changes.message_events:
        g = rollup_message_events
        stmt = dialect_insert(conn, g)
        least = func.min if conn.dialect.name == "sqlite" else func.least
        most = func.max if conn.dialect.name == "sqlite" else func.greatest
        stmt = stmt.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={
                "n": g.c.n + stmt.excluded.n,
                "first_at": least(g.c.first_at, stmt.excluded.first_at),
                "last_at": most(g.c.last_at, stmt.excluded.last_at),
                "reason": least(g.c.reason, stmt.excluded.reason),
                "url": most(
                    func.coalesce(g.c.url, stmt.excluded.url),
                    func.coalesce(stmt.excluded.url, g.c.url),
                ),
            },
        )
        await conn.execute(stmt, changes.message_events)
    if changes.counts:
        stmt = dialect_insert(conn, rollup_counts)
        stmt = stmt.on_conflict_do_update(
            index_elements=["campaign_id", "dim", "key"],
            set_={"n": rollup_counts.c.n + stmt.excluded.n},
        )
        await conn.execute(stmt, changes.counts)


async def _plan_lead_states(
    conn: AsyncConnection,
    facts: Sequence[Fact],
    company: dict[int, int],
    delta: dict[tuple[int, str, str], int],
) -> list[dict]:
    pairs = {(f.campaign_id, f.lead_id) for f in facts}
    t = rollup_campaign_leads
    by_campaign: dict[int, list[int]] = defaultdict(list)
    for c, lead in pairs:
        by_campaign[c].append(lead)
    states = {}
    for c, lead_ids in by_campaign.items():
        for chunk in _chunks(lead_ids):
            found = await conn.execute(
                select(t.c.lead_id, *(t.c[k] for k in STATE_FIELDS)).where(
                    t.c.campaign_id == c, t.c.lead_id.in_(chunk)
                )
            )
            states.update({(c, r[0]): LeadState(*(bool(v) for v in r[1:])) for r in found})
    before = dict(states)
    last_at: dict[tuple[int, int], dt.datetime] = {}
    for f in facts:
        pair = (f.campaign_id, f.lead_id)
        states[pair] = advance(states.get(pair, LeadState()), f)
        last_at[pair] = max(last_at.get(pair, f.at), f.at)
    rows = []
    for pair in pairs:
        old, new = before.get(pair, LeadState()), states[pair]
        for name, d in unique_deltas(old, new).items():
            delta[(pair[0], "n", name)] += d
        state = {k: getattr(new, k) for k in STATE_FIELDS}
        rows.append(
            {"campaign_id": pair[0], "lead_id": pair[1], "company_id": company[pair[0]]}
            | state
            | {"last_at": last_at[pair]}
        )
    return rows


async def _plan_forward_readers(
    conn: AsyncConnection,
    facts: Sequence[Fact],
    company: dict[int, int],
    delta: dict[tuple[int, str, str], int],
) -> list[dict]:
    readers = {}
    for f in facts:
        reader = forwarded_reader(f)
        if reader is not None:
            readers[(f.campaign_id, f.message_id, reader)] = company[f.campaign_id]
    if not readers:
        return []
    t = rollup_forward_readers
    for chunk in _chunks(list({m for _, m, _ in readers})):
        known = await conn.execute(
            select(t.c.campaign_id, t.c.message_id, t.c.reader).where(t.c.message_id.in_(chunk))
        )
        for row in known:
            readers.pop(tuple(row), None)
    for c, _, _ in readers:
        delta[(c, "n", "forwarded_readers")] += 1
    return [
        {"campaign_id": c, "message_id": m, "reader": r, "company_id": co}
        for (c, m, r), co in readers.items()
    ]


async def process_batch(db: Database, limit: int = BATCH) -> int:
    """Roll up the next events after the cursor; returns how many were read.

    The reads and the arithmetic hold no lock; one short transaction then moves the
    cursor by compare-and-set and writes the rows. If another runner moved the cursor
    in between, nothing is written and the batch is read again from the new position.
    """
    while True:
        async with db.connect() as conn:
            position = await stages.read_cursor(conn, CURSOR, commit=True)
            rows = (
                await conn.execute(
                    select(*EVENT_COLUMNS)
                    .where(events.c.id > position)
                    .order_by(events.c.id)
                    .limit(limit)
                )
            ).all()
            if not rows:
                return 0
            changes = await plan_changes(conn, await load_facts(conn, rows))
        async with db.begin() as conn:
            moved = await conn.execute(
                update(cursors)
                .where(cursors.c.name == CURSOR, cursors.c.position == position)
                .values(position=rows[-1].id, updated_at=now())
            )
            if moved.rowcount == 1:
                await write_changes(conn, changes)
        if moved.rowcount == 1:
            return len(rows)
        # another runner wrote this batch first (it changed nothing here): read on


async def catch_up(db: Database, limit: int = BATCH) -> int:
    """Process batches until no event is left; returns the number of events read."""
    total = 0
    while n := await process_batch(db, limit):
        total += n
    return total


async def rebuild(db: Database, limit: int = BATCH) -> int:
    """Empty every rollup and replay all events from the start."""
    async with db.begin() as conn:
        await stages.lock_cursor(conn, CURSOR)
        for table in ROLLUP_TABLES:
            await conn.execute(delete(table))
        await conn.execute(update(cursors).where(cursors.c.name == CURSOR).values(position=0))
    return await catch_up(db, limit)


async def _rewound(db: Database) -> bool:
    """Events were rewritten below the cursor (enrich --rebuild on a fresh table)."""
    async with db.connect() as conn:
        pos = (
            await conn.execute(select(cursors.c.position).where(cursors.c.name == CURSOR))
        ).scalar()
        top = (await conn.execute(select(func.max(events.c.id)))).scalar()
    return bool(pos) and (top or 0) < pos


async def _turn(db: Database, settings: Settings) -> int:
    """One batch of the stage; 0 after a short one (caught up: rest before reading on)."""
    if await _rewound(db):
        await rebuild(db, settings.rollups_batch_size)
    n = await process_batch(db, settings.rollups_batch_size)
    return n if n >= settings.rollups_batch_size else 0


def stage(settings: Settings) -> Stage:
    """The pipeline stage: keep the rollups within about a second of the events."""
    return Stage(CURSOR, _turn, poll=settings.rollups_poll_seconds)


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    await run_stage(stage(settings), db, settings, stop)
