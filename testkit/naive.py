"""The report recomputed the slow way: GROUP BY over the raw events, no rollups.

What a tool without rollups would run on every page view. It exists to check the
rollups (tests compare the two field by field) and as the benchmark's baseline.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.estimate import Counts, counts_from_groups
from mailbeacon.analytics.report import (
    Counters,
    Untracked,
    build_report,
    sent_count,
    untracked_counts,
)
from mailbeacon.analytics.rules import MAX_HOURS, link_key, local_time
from mailbeacon.crm.campaigns import get_campaign
from mailbeacon.store.schema import campaigns, events, leads, messages

e, m = events, messages
HUMAN = e.c.verdict.in_(("human", "proxy"))
MACHINE = e.c.verdict.in_(("prefetch", "scanner", "bot"))
OPEN, CLICK = e.c.type == "open", e.c.type == "click"
OWN = and_(e.c.forwarded.is_(False), m.c.forwarded_from_message_id.is_(None))


def _sum(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _from(campaign_id: int, *cols: Any) -> Any:
    return (
        select(*cols)
        .select_from(e.outerjoin(m, m.c.id == e.c.message_id))
        .where(e.c.campaign_id == campaign_id)
    )


async def _headline(conn: AsyncConnection, campaign_id: int, n: dict[str, int]) -> None:
    row = (
        await conn.execute(
            _from(
                campaign_id,
                _sum(OPEN).label("opens_total"),
                _sum(and_(OPEN, MACHINE)).label("machine_opens"),
                _sum(and_(OPEN, HUMAN)).label("human_opens"),
                _sum(and_(CLICK, HUMAN)).label("clicks_total"),
                _sum(and_(CLICK, e.c.verdict.in_(("scanner", "bot")))).label("bot_clicks"),
                _sum(e.c.type == "forward").label("forward_sends"),
            )
        )
    ).one()
    n.update({k: int(v) for k, v in row._mapping.items()})
    per_lead = _from(
        campaign_id,
        func.max(case((OPEN, 1), else_=0)).label("any_open"),
        func.max(case((and_(OPEN, HUMAN, OWN, e.c.inferred.is_(False)), 1), else_=0)).label("ho"),
        func.max(case((and_(OPEN, HUMAN, OWN, e.c.inferred.is_(True)), 1), else_=0)).label("io"),
        func.max(case((and_(CLICK, HUMAN, OWN), 1), else_=0)).label("hc"),
        func.max(case((e.c.type == "unsubscribe", 1), else_=0)).label("un"),
    ).group_by(e.c.lead_id)
    s = per_lead.subquery()
    sign = or_(s.c.io == 1, s.c.hc == 1)
    row = (
        await conn.execute(
            select(
                _sum(s.c.any_open == 1).label("opens_unique"),
                _sum(or_(s.c.ho == 1, sign)).label("human_opens_unique"),
                _sum(and_(sign, s.c.ho == 0)).label("inferred_opens"),
                _sum(s.c.hc == 1).label("clicks_unique"),
                _sum(s.c.un == 1).label("unsubscribes"),
            )
        )
    ).one()
    n.update({k: int(v) for k, v in row._mapping.items()})
    reader = func.coalesce(
        e.c.ip,
        func.coalesce(e.c.client, "")
        + literal("|")
        + func.coalesce(e.c.os, "")
        + literal("|")
        + func.coalesce(e.c.country, ""),
    )
    readers = (
        _from(campaign_id, e.c.message_id, reader.label("reader"))
        .where(e.c.forwarded.is_(True), m.c.forwarded_from_message_id.is_(None), HUMAN)
        .where(e.c.type.in_(("open", "click")))
        .distinct()
        .subquery()
    )
    n["forwarded_readers"] = int(
        (await conn.execute(select(func.count()).select_from(readers))).scalar_one()
    )


async def _group(conn: AsyncConnection, q: Any) -> list[Any]:
    return list((await conn.execute(q)).all())


async def _dims(conn: AsyncConnection, campaign_id: int, out: Counters) -> None:
    real = and_(OPEN, HUMAN, e.c.inferred.is_(False))
    for dim, col, cond in (
        ("client", e.c.client, real),
        ("device", e.c.device, real),
        ("os", e.c.os, real),
        ("country", e.c.country, and_(OPEN, HUMAN)),
        ("machine_open_verdict", e.c.verdict, and_(OPEN, MACHINE)),
        (
            "machine_open_reason",
            func.coalesce(func.nullif(e.c.reason, ""), e.c.verdict),
            and_(OPEN, MACHINE),
        ),
        ("bot_click_verdict", e.c.verdict, and_(CLICK, e.c.verdict.in_(("scanner", "bot")))),
        (
            "bot_click_reason",
            func.coalesce(func.nullif(e.c.reason, ""), e.c.verdict),
            and_(CLICK, e.c.verdict.in_(("scanner", "bot"))),
        ),
    ):
        for key, cnt in await _group(
            conn, _from(campaign_id, col, func.count()).where(cond).group_by(col)
        ):
            out[dim][key or "unknown"] = out[dim].get(key or "unknown", 0) + int(cnt)
    q = _from(campaign_id, e.c.link_index, e.c.url, func.count()).where(CLICK, HUMAN)
    for index, url, cnt in await _group(conn, q.group_by(e.c.link_index, e.c.url)):
        out["link"][link_key(index, url)] = int(cnt)


def _minute(conn: AsyncConnection, col: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date_trunc("minute", col)
    return func.strftime("%Y-%m-%d %H:%M", col)


def _hours_between(conn: AsyncConnection, at: Any, start: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", at - start) / 3600), Integer)
    return (
        cast(func.strftime("%s", at), Integer) - cast(func.strftime("%s", start), Integer)
    ) / 3600


async def _times(conn: AsyncConnection, campaign_id: int, out: Counters) -> None:
    """Local hour and weekday per lead timezone, and hours since the send."""
    minute = _minute(conn, e.c.at)
    q = (
        _from(campaign_id, leads.c.timezone, minute, func.count())
        .outerjoin(leads, leads.c.id == e.c.lead_id)
        .where(OPEN, HUMAN)
        .group_by(leads.c.timezone, minute)
    )
    for tz, at, cnt in await _group(conn, q):
        at = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)
        local = local_time(at.replace(tzinfo=None), tz)
        for dim, key in (("hour", local.hour), ("how", local.weekday() * 24 + local.hour)):
            out[dim][str(key)] = out[dim].get(str(key), 0) + int(cnt)
    since = _hours_between(conn, e.c.at, func.coalesce(m.c.sent_at, campaigns.c.sent_at))
    for dim, cond in (
        ("t_open", and_(OPEN, HUMAN)),
        ("t_click", and_(CLICK, HUMAN)),
        ("t_machine", and_(OPEN, MACHINE)),
    ):
        q = (
            _from(campaign_id, since, func.count())
            .outerjoin(campaigns, campaigns.c.id == e.c.campaign_id)
            .where(cond)
            .group_by(since)
        )
        for hours, cnt in await _group(conn, q):
            key = str(min(max(int(hours or 0), 0), MAX_HOURS))
            out[dim][key] = out[dim].get(key, 0) + int(cnt)


async def naive_counters(conn: AsyncConnection, campaign_id: int) -> Counters:
    out: Counters = defaultdict(dict)
    await _headline(conn, campaign_id, out["n"])
    await _dims(conn, campaign_id, out)
    await _times(conn, campaign_id, out)
    return {dim: {k: v for k, v in keys.items() if v} for dim, keys in out.items()}


async def naive_groups(conn: AsyncConnection, campaign_id: int, sent: int) -> Counts:
    """The estimate's recipient groups from the raw events, lead by lead."""
    flag = func.max
    per_lead = (
        _from(
            campaign_id,
            flag(case((and_(OPEN, HUMAN, OWN, e.c.inferred.is_(False)), 1), else_=0)).label("ho"),
            flag(case((and_(OPEN, HUMAN, OWN, e.c.inferred.is_(True)), 1), else_=0)).label("io"),
            flag(case((and_(CLICK, HUMAN, OWN), 1), else_=0)).label("hc"),
            flag(case((and_(OPEN, e.c.verdict == "prefetch", OWN), 1), else_=0)).label("pf"),
        )
        .group_by(e.c.lead_id)
        .subquery()
    )
    s = per_lead.c
    rows = (await conn.execute(select(s.ho, s.io, s.hc, s.pf))).all()
    return counts_from_groups(
        sent, ((ho == 1, io == 1 or hc == 1, pf == 1, 1) for ho, io, hc, pf in rows)
    )


async def naive_report(conn: AsyncConnection, company_id: int, campaign_id: int) -> dict[str, Any]:
    campaign = await get_campaign(conn, company_id, campaign_id)
    counters = await naive_counters(conn, campaign_id)
    sent = await sent_count(conn, campaign)
    untracked = (await untracked_counts(conn, [campaign_id])).get(campaign_id, Untracked())
    groups = await naive_groups(conn, campaign_id, sent - untracked.opens)
    return build_report(campaign_id, sent, counters, groups, untracked)
