"""Rebuild every rollup from the events in a few set-based statements, not event by event.

`rollups.rebuild` replays events through the pipeline's incremental path (about 10k
events/s); this builds the same tables with GROUP BY in the database:

- `rollup_campaign_leads`, `rollup_forward_readers` and `rollup_message_events`:
  INSERT ... SELECT ... GROUP BY.
- `rollup_counts`: three GROUP BY scans whose groups (a few thousand rows, whatever the
  number of events) are folded through `rules.counts` and `rules.uniques`, the very
  functions the incremental path calls, so the two agree by construction. The groups:
  the event's categorical columns; (lead timezone, minute) for the local hour, since
  zoneinfo decides it and SQLite has no time zones; hours since the send.

Everything runs in one transaction that first takes the `rollups` cursor (so the
pipeline stage waits) and ends by moving the cursor to the last event counted; events
above it are left to the stage. On SQLite that transaction holds the write lock for the
whole build (about a minute per 10M events): writers wait, up to their busy timeout.

One difference from a replay, harmless to every reader: a replay can leave a unique
counter row at n = 0 (an inferred open later replaced by a real open, across batches);
the bulk build writes no zero rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.rollups import CURSOR, KEY_COLUMNS, ROLLUP_TABLES
from mailbeacon.analytics.rules import (
    HUMAN,
    MACHINE,
    MAX_HOURS,
    PER_LEAD_DIMS,
    Fact,
    LeadState,
    counts,
    lead_key,
    local_time,
    uniques,
)
from mailbeacon.store import Database, stages
from mailbeacon.store.schema import campaigns, cursors, events, leads, messages
from mailbeacon.store.schema_analytics import (
    NO_CLIENT,
    NO_LINK,
    rollup_campaign_leads,
    rollup_counts,
    rollup_forward_readers,
    rollup_message_events,
)

e, m = events, messages
# Dimensions that need the event's time; everything else comes from the categorical scan.
TIME_DIMS = frozenset({"hour", "how", "t_open", "t_click", "t_machine"})
IS_HUMAN = e.c.verdict.in_(sorted(HUMAN))
IS_MACHINE = e.c.verdict.in_(sorted(MACHINE))
OWN = and_(not_(e.c.forwarded), m.c.forwarded_from_message_id.is_(None))
EPOCH = dt.datetime(1970, 1, 1)
Delta = dict[tuple[int, str, str], int]


def _flag(cond: Any) -> Any:
    """True when any event of the group meets `cond` (a boolean on both engines)."""
    return func.max(case((cond, 1), else_=0)) == 1


def _base(top: int, *cols: Any) -> Any:
    return select(*cols).where(e.c.campaign_id.is_not(None), e.c.id <= top)


async def _lead_states(conn: AsyncConnection, top: int) -> None:
    """One row per (campaign, lead) with any event: what `rules.advance` would leave."""
    t = rollup_campaign_leads
    opened = e.c.type == "open"
    q = (
        _base(
            top,
            e.c.campaign_id,
            e.c.lead_id,
            func.max(e.c.company_id),
            _flag(opened),
            _flag(and_(opened, IS_HUMAN, OWN, not_(e.c.inferred))),
            _flag(and_(opened, IS_HUMAN, OWN, e.c.inferred)),
            _flag(and_(e.c.type == "click", IS_HUMAN, OWN)),
            _flag(e.c.type == "unsubscribe"),
            func.max(e.c.at),
        )
        .select_from(e.outerjoin(m, m.c.id == e.c.message_id))
        .group_by(e.c.campaign_id, e.c.lead_id)
    )
    names = ["campaign_id", "lead_id", "company_id", "any_open", "human_open"]
    names += ["inferred_open", "human_click", "unsubscribed", "last_at"]
    await conn.execute(insert(t).from_select(names, q))


def _reader() -> Any:
    """`rules.reader_of`, truncated as `rules.forwarded_reader` does."""
    fallback = (
        func.coalesce(e.c.client, "")
        + literal("|")
        + func.coalesce(e.c.os, "")
        + literal("|")
        + func.coalesce(e.c.country, "")
    )
    return func.substr(func.coalesce(func.nullif(e.c.ip, ""), fallback), 1, 128)


async def _forward_readers(conn: AsyncConnection, top: int) -> None:
    """Distinct readers detected as forwards, per message (`rules.forwarded_reader`)."""
    reader = _reader()
    q = (
        _base(top, e.c.campaign_id, e.c.message_id, reader, func.max(e.c.company_id))
        .select_from(e.outerjoin(m, m.c.id == e.c.message_id))
        .where(
            e.c.forwarded,
            m.c.forwarded_from_message_id.is_(None),
            IS_HUMAN,
            e.c.type.in_(("open", "click")),
        )
        .group_by(e.c.campaign_id, e.c.message_id, reader)
    )
    names = ["campaign_id", "message_id", "reader", "company_id"]
    await conn.execute(insert(rollup_forward_readers).from_select(names, q))


CATEGORICAL = (
    e.c.type,
    e.c.verdict,
    e.c.reason,
    e.c.inferred,
    e.c.forwarded,
    e.c.client,
    e.c.device,
    e.c.os,
    e.c.country,
    e.c.url,
    e.c.link_index,
)


async def _categorical(
    conn: AsyncConnection, top: int, delta: Delta, company: dict[int, int]
) -> int:
    """Every counter but the time ones, by folding groups of alike events through
    `rules.counts`; returns the number of campaign events."""
    q = _base(top, e.c.campaign_id, func.max(e.c.company_id), func.count(), *CATEGORICAL)
    total = 0
    result = await conn.stream(q.group_by(e.c.campaign_id, *CATEGORICAL))
    async for row in result:
        campaign_id, company_id, n = int(row[0]), int(row[1]), int(row[2])
        company[campaign_id] = max(company.get(campaign_id, company_id), company_id)
        total += n
        kw = {c.name: v for c, v in zip(CATEGORICAL, row[3:], strict=True)}
        kw["inferred"], kw["forwarded"] = bool(kw["inferred"]), bool(kw["forwarded"])
        fact = Fact(id=0, at=EPOCH, campaign_id=campaign_id, lead_id=0, message_id=0, **kw)
        for dim, key in counts(fact):
            if dim not in TIME_DIMS and dim not in PER_LEAD_DIMS:
                delta[(campaign_id, dim, key)] += n
    return total


async def _forwarders(conn: AsyncConnection, top: int, delta: Delta) -> None:
    """The per-lead "forwarder" counters (`rules.counts`): forward sends, and human
    engagement by detected forwards of the lead's own copy."""
    signs = (e.c.type == "forward") | (
        e.c.forwarded
        & m.c.forwarded_from_message_id.is_(None)
        & IS_HUMAN
        & e.c.type.in_(("open", "click"))
    )
    q = (
        _base(top, e.c.campaign_id, e.c.lead_id, func.count())
        .select_from(e.outerjoin(m, m.c.id == e.c.message_id))
        .where(signs)
        .group_by(e.c.campaign_id, e.c.lead_id)
    )
    for campaign_id, lead_id, n in (await conn.execute(q)).all():
        delta[(campaign_id, "forwarder", lead_key(lead_id))] += n


def _minute(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("minute", e.c.at)
    return func.substr(e.c.at, 1, 16)  # 'YYYY-MM-DD HH:MM' of SQLAlchemy's text format


async def _local_hours(conn: AsyncConnection, top: int, delta: Delta) -> None:
    """Human opens by the lead's local hour and hour of week (zoneinfo, per minute)."""
    minute = _minute(conn)
    q = (
        _base(top, e.c.campaign_id, leads.c.timezone, minute, func.count())
        .select_from(e.outerjoin(leads, leads.c.id == e.c.lead_id))
        .where(e.c.type == "open", IS_HUMAN)
        .group_by(e.c.campaign_id, leads.c.timezone, minute)
    )
    result = await conn.stream(q)
    async for campaign_id, tz, at, n in result:
        at = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)
        local = local_time(at.replace(tzinfo=None), tz)
        delta[(campaign_id, "hour", str(local.hour))] += n
        delta[(campaign_id, "how", str(local.weekday() * 24 + local.hour))] += n


def _hours_since(conn: AsyncConnection, sent: Any) -> Any:
    """Whole hours from `sent` to the event, exact to the microsecond (NULL if unsent)."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", e.c.at - sent) / 3600), Integer)

    def micros(x: Any) -> Any:  # SQLite keeps 'YYYY-MM-DD HH:MM:SS[.ffffff]' text
        secs = cast(func.strftime("%s", func.substr(x, 1, 19)), Integer)
        frac = cast(func.substr(func.substr(x, 21, type_=String) + "000000", 1, 6), Integer)
        return secs * 1_000_000 + frac

    # Integer division truncates towards zero; negatives are clamped to 0 anyway.
    return (micros(e.c.at) - micros(sent)) / 3_600_000_000


async def _since_send(conn: AsyncConnection, top: int, delta: Delta) -> None:
    """Human opens, human clicks and machine opens by hours since the send."""
    sent = func.coalesce(m.c.sent_at, campaigns.c.sent_at)
    hours = _hours_since(conn, sent)
    dim = case(
        (e.c.type == "click", "t_click"),
        (IS_HUMAN, "t_open"),
        else_="t_machine",
    )
    q = (
        _base(top, e.c.campaign_id, dim, hours, func.count())
        .select_from(
            e.outerjoin(m, m.c.id == e.c.message_id).outerjoin(
                campaigns, campaigns.c.id == e.c.campaign_id
            )
        )
        .where(
            ((e.c.type == "open") & (IS_HUMAN | IS_MACHINE)) | ((e.c.type == "click") & IS_HUMAN)
        )
        .group_by(e.c.campaign_id, dim, hours)
    )
    for campaign_id, name, h, n in (await conn.execute(q)).all():
        key = str(min(max(int(h), 0), MAX_HOURS) if h is not None else 0)
        delta[(campaign_id, name, key)] += n


async def _uniques(conn: AsyncConnection, delta: Delta) -> None:
    """Unique counters from the lead states (`rules.uniques` per kind of lead)."""
    t = rollup_campaign_leads
    flags = (t.c.any_open, t.c.human_open, t.c.inferred_open, t.c.human_click, t.c.unsubscribed)
    q = select(t.c.campaign_id, func.count(), *flags).group_by(t.c.campaign_id, *flags)
    for campaign_id, n, *state in (await conn.execute(q)).all():
        for name, v in uniques(LeadState(*(bool(s) for s in state))).items():
            delta[(campaign_id, "n", name)] += v * n
    f = rollup_forward_readers
    q = select(f.c.campaign_id, func.count()).group_by(f.c.campaign_id)
    for campaign_id, n in (await conn.execute(q)).all():
        delta[(campaign_id, "n", "forwarded_readers")] += n


async def _message_events(conn: AsyncConnection, top: int) -> None:
    """Each message's events in the groups `rollups.plan_message_events` makes."""
    client = func.coalesce(e.c.client, NO_CLIENT)
    link = func.coalesce(e.c.link_index, NO_LINK)
    key = (e.c.message_id, e.c.type, e.c.verdict, e.c.inferred, e.c.forwarded, client, link)
    q = _base(
        top,
        *key,
        func.max(e.c.campaign_id),
        func.max(e.c.lead_id),
        func.max(e.c.company_id),
        func.max(e.c.url),
        func.count(),
        func.min(e.c.at),
        func.max(e.c.at),
        func.min(e.c.reason),
    ).group_by(*key)
    names = [*KEY_COLUMNS, "campaign_id", "lead_id", "company_id", "url", "n"]
    names += ["first_at", "last_at", "reason"]
    await conn.execute(insert(rollup_message_events).from_select(names, q))


async def build(conn: AsyncConnection, top: int) -> int:
    """Fill the (empty) rollups from events up to id `top`; returns the events counted."""
    await _lead_states(conn, top)
    await _message_events(conn, top)
    await _forward_readers(conn, top)
    delta: Delta = defaultdict(int)
    company: dict[int, int] = {}
    total = await _categorical(conn, top, delta, company)
    await _forwarders(conn, top, delta)
    await _local_hours(conn, top, delta)
    await _since_send(conn, top, delta)
    await _uniques(conn, delta)
    rows = [
        {"campaign_id": c, "dim": d, "key": k, "company_id": company[c], "n": n}
        for (c, d, k), n in delta.items()
        if n
    ]
    for i in range(0, len(rows), 5000):
        await conn.execute(insert(rollup_counts), rows[i : i + 5000])
    return total


async def rebuild_bulk(db: Database) -> int:
    """Empty every rollup and recount all events set-wise; returns the events counted."""
    async with db.begin() as conn:
        await stages.lock_cursor(conn, CURSOR)  # the pipeline's stage waits meanwhile
        top = int((await conn.execute(select(func.max(e.c.id)))).scalar() or 0)
        for table in ROLLUP_TABLES:
            await conn.execute(delete(table))
        total = await build(conn, top)
        await conn.execute(update(cursors).where(cursors.c.name == CURSOR).values(position=top))
    if not db.is_sqlite:
        async with db.begin() as conn:
            for table in ROLLUP_TABLES:
                await conn.exec_driver_sql(f"ANALYZE {table.name}")
    return total
