"""A lead's engagement summary (the `engagement` field of a lead in the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.schema import events

HUMAN_VERDICTS = ("human", "proxy")


async def lead_engagement(conn: AsyncConnection, company_id: int, lead_id: int) -> dict[str, Any]:
    """Counts of the lead's own engagement: forwarded and machine events are set apart."""
    own = (
        events.c.company_id == company_id,
        events.c.lead_id == lead_id,
        events.c.forwarded.is_(False),
        events.c.verdict.in_(HUMAN_VERDICTS),
    )
    rows = await conn.execute(
        select(events.c.type, func.count(), func.max(events.c.at))
        .where(*own)
        .group_by(events.c.type)
    )
    counts = {t: (n, last) for t, n, last in rows}
    opens, last_open = counts.get("open", (0, None))
    clicks, last_click = counts.get("click", (0, None))
    return {
        "opens": opens,
        "clicks": clicks,
        "last_open": last_open,
        "last_click": last_click,
    }
