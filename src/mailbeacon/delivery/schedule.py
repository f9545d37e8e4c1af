"""When each lead of a scheduled campaign gets their copy: the data behind `besthour`.

A campaign's `schedule` (checked by `crm.campaigns.check_schedule`) is null (at once),
`{"at": ISO-8601}` or `{"best_hour": true, "within_hours": N}`. For a best-hour
campaign the lead's human opens (verdict human or proxy: a machine's prefetch says
nothing about when a person reads) and the company's give the hours; the lead's zone is
their own `timezone`, else the one their opens' places imply (`timezones`), else UTC.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.delivery.besthour import HOUR, Choice, choose, usual_hour
from mailbeacon.delivery.timezones import place_zone, zone, zone_of_places
from mailbeacon.store.schema import events, leads, messages

HUMAN = ("human", "proxy")
COMPANY_SAMPLE = 20_000  # the company's newest human opens that decide its usual hour
CHUNK = 500


def _human_opens(company_id: int) -> Any:
    return (
        events.c.company_id == company_id,
        events.c.type == "open",
        events.c.verdict.in_(HUMAN),
    )


async def company_hour(
    conn: AsyncConnection, company_id: int, hour_seconds: int = HOUR
) -> int | None:
    """The company's usual local hour of opening, each open in its reader's zone."""
    rows = await conn.execute(
        sa.select(events.c.at, events.c.country, events.c.city, leads.c.timezone)
        .join(leads, leads.c.id == events.c.lead_id)
        .where(*_human_opens(company_id))
        .order_by(events.c.at.desc())
        .limit(COMPANY_SAMPLE)
    )
    by_zone: dict[str | None, list[dt.datetime]] = defaultdict(list)
    for r in rows:
        name = r.timezone if zone(r.timezone) else place_zone(r.country, r.city)
        by_zone[name].append(r.at)
    # Every open as its reader's wall clock read, counted together in one mode.
    hours: list[dt.datetime] = []
    for name, ats in by_zone.items():
        tz = zone(name)
        hours += [_as_local_wall(at, tz) for at in ats]
    return usual_hour(hours, None, hour_seconds)


def _as_local_wall(at: dt.datetime, tz: Any) -> dt.datetime:
    if tz is None:
        return at
    return at.replace(tzinfo=dt.UTC).astimezone(tz).replace(tzinfo=None)


async def lead_habits(
    conn: AsyncConnection, company_id: int, lead_ids: Sequence[int]
) -> dict[int, tuple[list[dt.datetime], str | None]]:
    """Each lead's human open times and their zone (own, else their opens' places)."""
    out: dict[int, tuple[list[dt.datetime], str | None]] = {}
    for i in range(0, len(lead_ids), CHUNK):
        chunk = list(lead_ids[i : i + CHUNK])
        zones = dict(
            (await conn.execute(
                sa.select(leads.c.id, leads.c.timezone).where(
                    leads.c.company_id == company_id, leads.c.id.in_(chunk)
                )
            )).all()
        )  # fmt: skip
        opens: dict[int, list[tuple[dt.datetime, str | None, str | None]]] = defaultdict(list)
        rows = await conn.execute(
            sa.select(events.c.lead_id, events.c.at, events.c.country, events.c.city).where(
                *_human_opens(company_id), events.c.lead_id.in_(chunk)
            )
        )
        for r in rows:
            opens[r.lead_id].append((r.at, r.country, r.city))
        for lead_id in chunk:
            seen = opens.get(lead_id, [])
            own = zones.get(lead_id)
            name = own if zone(own) else zone_of_places((c, t) for _, c, t in seen)
            out[lead_id] = ([at for at, _, _ in seen], name)
    return out


def parse_at(value: str) -> dt.datetime:
    """An ISO-8601 time as the store's naive UTC (a time without an offset is UTC)."""
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


async def plan(
    conn: AsyncConnection,
    company_id: int,
    lead_ids: Sequence[int],
    schedule: dict[str, Any] | None,
    start: dt.datetime,
    hour_seconds: int = HOUR,
) -> dict[int, Choice]:
    """The send time of each lead in `lead_ids`."""
    if not schedule or not schedule.get("best_hour"):
        at = parse_at(schedule["at"]) if schedule and schedule.get("at") else start
        return {lead_id: Choice(at, None, "now") for lead_id in lead_ids}
    within = int(schedule.get("within_hours") or 24)
    company = await company_hour(conn, company_id, hour_seconds)
    habits = await lead_habits(conn, company_id, lead_ids)
    return {
        lead_id: choose(start, within, opens, zone(name), company, hour_seconds)
        for lead_id, (opens, name) in habits.items()
    }


async def waiting_copies(
    conn: AsyncConnection, company_id: int, campaign_id: int
) -> dict[str, Any]:
    """`{"scheduled", "next_at", "last_at"}`: the campaign's copies not handed over yet."""
    row = (
        await conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.min(messages.c.scheduled_at),
                sa.func.max(messages.c.scheduled_at),
            ).where(
                messages.c.company_id == company_id,
                messages.c.campaign_id == campaign_id,
                messages.c.forwarded_from_message_id.is_(None),
                messages.c.status.in_(("scheduled", "queued")),
            )
        )
    ).one()
    return {"scheduled": int(row[0]), "next_at": row[1], "last_at": row[2]}
