"""Which leads meet a template's engagement conditions, fetched for many leads at once.

A campaign send asks once per condition per batch of leads (one query each, `IN` on
the batch), never once per lead: at 100k leads that is a few hundred queries, not
hundreds of thousands. Only a person's engagement counts, as in reports and rules:
`human` or `proxy` verdicts (an open inferred from a human click counts as an open);
privacy prefetches, scanners and bots never meet a condition, and nor does what a
friend the mail was forwarded to did.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.compose.blocks import Condition
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns, events, leads

PERSON = ("human", "proxy")
MACHINE = ("prefetch", "scanner", "bot")
CHUNK = 1000  # leads per IN list (asyncpg takes at most 32767 parameters)


def _like_part(part: str) -> str:
    """`%part%` for LIKE, with the part's own wildcards taken literally (escape `\\`)."""
    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _own_opens() -> ColumnElement[bool]:
    return and_(
        events.c.type == "open",
        events.c.forwarded.is_(False),
        events.c.verdict.not_in(MACHINE),
        or_(events.c.verdict.in_(PERSON), events.c.inferred.is_(True)),
    )


async def _tagged_campaigns(conn: AsyncConnection, company_id: int, tag: str) -> list[int]:
    """The company's campaigns carrying `tag` (any case). Tags are a JSON list, read in
    Python: a company has campaigns by the hundred, not the million."""
    rows = await conn.execute(
        select(campaigns.c.id, campaigns.c.tags).where(campaigns.c.company_id == company_id)
    )
    return [r.id for r in rows if any(str(t).strip().lower() == tag for t in r.tags or ())]


async def _met_by(
    conn: AsyncConnection,
    company_id: int,
    condition: Condition,
    lead_ids: Sequence[int],
    at: dt.datetime,
) -> set[int]:
    """The leads of `lead_ids` that meet `condition`: one query."""
    name, value = condition
    mine = and_(events.c.company_id == company_id, events.c.lead_id.in_(lead_ids))
    query: Any
    if name == "clicked":
        query = select(events.c.lead_id).where(
            mine,
            events.c.type == "click",
            events.c.forwarded.is_(False),
            events.c.verdict.in_(PERSON),
            func.lower(events.c.url).like(_like_part(str(value)), escape="\\"),
        )
    elif name == "opened_tagged":
        tagged = await _tagged_campaigns(conn, company_id, str(value))
        if not tagged:
            return set()
        query = select(events.c.lead_id).where(mine, _own_opens(), events.c.campaign_id.in_(tagged))
    elif name == "score_at_least":
        query = select(leads.c.id).where(
            leads.c.company_id == company_id, leads.c.id.in_(lead_ids), leads.c.score >= value
        )
    elif name == "not_opened_for_days":
        since = at - dt.timedelta(days=int(value))
        query = select(events.c.lead_id).where(mine, _own_opens(), events.c.at >= since)
        opened = set((await conn.execute(query.distinct())).scalars())
        return set(lead_ids) - opened
    else:  # templates are checked when saved; an unknown one here is a bug upstream
        raise ValueError(f"unknown condition {name!r}")
    return set((await conn.execute(query.distinct())).scalars())


async def engagement_of(
    conn: AsyncConnection,
    company_id: int,
    conditions: Iterable[Condition],
    lead_ids: Sequence[int],
    at: dt.datetime | None = None,
) -> dict[int, frozenset[Condition]]:
    """For each lead of `lead_ids`, the conditions it meets (leads meeting none are
    left out). One query per condition per `CHUNK` leads."""
    wanted = sorted(set(conditions), key=repr)
    if not wanted or not lead_ids:
        return {}
    at = at or now()
    met: dict[int, set[Condition]] = defaultdict(set)
    ids = list(lead_ids)
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        for condition in wanted:
            for lead_id in await _met_by(conn, company_id, condition, chunk, at):
                met[lead_id].add(condition)
    return {lead_id: frozenset(found) for lead_id, found in met.items()}
