"""A lead's engagement summary (the `engagement` field of a lead in the API).

Read straight from the lead's events (index on lead_id): one lead has few. Only the
lead's own human engagement counts (human or proxy verdict, not forwarded); machine
opens are reported beside it, and forwards of the lead's mail are counted apart.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.rules import HUMAN, MACHINE, local_time
from mailbeacon.store.schema import campaigns, events, leads, messages


def _affinity(
    sent: dict[int, tuple[str, list[str]]], opened: set[int], clicked: set[int]
) -> dict[str, Any]:
    """Per campaign and per tag: what the lead opened or clicked, and what they ignored."""
    per_campaign = [
        {
            "campaign_id": cid,
            "name": name,
            "tags": tags,
            "outcome": "clicked" if cid in clicked else "opened" if cid in opened else "ignored",
        }
        for cid, (name, tags) in sorted(sent.items())
    ]
    tags: dict[str, Counter[str]] = {}
    for row in per_campaign:
        for tag in row["tags"]:
            tags.setdefault(tag, Counter())[row["outcome"]] += 1
    return {
        "campaigns": per_campaign,
        "tags": {
            t: {k: c[k] for k in ("opened", "clicked", "ignored")} for t, c in sorted(tags.items())
        },
    }


def summarize(
    rows: list[Any], tz: str | None, sent: dict[int, tuple[str, list[str]]]
) -> dict[str, Any]:
    """The summary from the lead's events (pure: rows carry type, verdict, at, ...)."""
    own = [r for r in rows if r.verdict in HUMAN and not r.forwarded]
    opens = [r for r in own if r.type == "open"]
    clicks = [r for r in own if r.type == "click"]
    hours = Counter(local_time(r.at, tz).hour for r in opens)
    places = Counter(
        ", ".join(p for p in (r.city, r.region, r.country) if p)
        for r in opens
        if r.country or r.city
    )
    last_open: dt.datetime | None = max((r.at for r in opens), default=None)
    last_click: dt.datetime | None = max((r.at for r in clicks), default=None)
    forwarded_readers = {(r.message_id, r.ip or r.client) for r in rows if r.forwarded}
    return {
        "opens": len(opens),
        # Opens beyond the first of each message: the lead came back to it.
        "repeat_opens": len(opens) - len({r.message_id for r in opens}),
        "clicks": len(clicks),
        "inferred_opens": sum(1 for r in opens if r.inferred),
        "machine_opens": sum(1 for r in rows if r.type == "open" and r.verdict in MACHINE),
        "last_open": last_open,
        "last_click": last_click,
        # Ties go to the earlier hour, so the answer is stable.
        "usual_open_hour": min(hours, key=lambda h: (-hours[h], h)) if hours else None,
        "timezone": tz or "UTC",
        "places": [{"place": p, "opens": n} for p, n in places.most_common(10)],
        "forwards": sum(1 for r in rows if r.type == "forward") + len(forwarded_readers),
        "affinity": _affinity(
            sent,
            {r.campaign_id for r in opens if r.campaign_id},
            {r.campaign_id for r in clicks if r.campaign_id},
        ),
    }


async def lead_engagement(conn: AsyncConnection, company_id: int, lead_id: int) -> dict[str, Any]:
    rows = (
        await conn.execute(
            select(
                events.c.type,
                events.c.verdict,
                events.c.at,
                events.c.inferred,
                events.c.forwarded,
                events.c.message_id,
                events.c.campaign_id,
                events.c.country,
                events.c.region,
                events.c.city,
                events.c.client,
                events.c.ip,
            ).where(events.c.company_id == company_id, events.c.lead_id == lead_id)
        )
    ).all()
    tz = (
        await conn.execute(
            select(leads.c.timezone).where(leads.c.id == lead_id, leads.c.company_id == company_id)
        )
    ).scalar()
    # IN, not DISTINCT: PostgreSQL cannot compare the JSON tags column.
    mailed_to = select(messages.c.campaign_id).where(
        messages.c.lead_id == lead_id, messages.c.company_id == company_id
    )
    mailed = await conn.execute(
        select(campaigns.c.id, campaigns.c.name, campaigns.c.tags).where(
            campaigns.c.id.in_(mailed_to)
        )
    )
    sent = {cid: (name, list(tags or [])) for cid, name, tags in mailed}
    return summarize(rows, tz, sent)
