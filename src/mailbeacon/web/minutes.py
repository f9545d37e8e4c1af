"""Opens and clicks minute by minute, for the chart of a campaign sent minutes ago.

The report's over-time series comes from hourly rollups: for a campaign an hour old it
is a single point. While a campaign is young (`YOUNG`) its page groups the campaign's
events by minute since its first mail left, with the rollups' verdict rules (human and
Gmail-proxy opens, human clicks, machine opens). Older campaigns keep the hourly series.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.schema import events, messages

YOUNG = dt.timedelta(hours=3)
HUMAN = events.c.verdict.in_(("human", "proxy"))
MACHINE = events.c.verdict.in_(("prefetch", "scanner", "bot"))
SERIES = ("human_opens", "clicks", "machine_opens")


def _minute(conn: AsyncConnection, col: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("minute", col), "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", col)


async def first_send(conn: AsyncConnection, campaign_id: int) -> dt.datetime | None:
    """When the campaign's first mail left (the campaign's own sent_at is set at the end)."""
    found = await conn.execute(
        select(func.min(messages.c.sent_at)).where(messages.c.campaign_id == campaign_id)
    )
    at = found.scalar_one_or_none()
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    return at.replace(tzinfo=None) if at is not None else None


async def minute_series(
    conn: AsyncConnection, campaign_id: int, now: dt.datetime
) -> dict[str, Any] | None:
    """{"started_at", "minutes_since_send", "human_opens", "clicks", "machine_opens"},
    or None for a campaign not sent or older than `YOUNG`."""
    start = await first_send(conn, campaign_id)
    now = now.replace(tzinfo=None)
    if start is None or now - start > YOUNG:
        return None
    kind = case(
        ((events.c.type == "click") & HUMAN, "clicks"),
        ((events.c.type == "open") & HUMAN, "human_opens"),
        ((events.c.type == "open") & MACHINE, "machine_opens"),
        else_="other",
    )
    minute = _minute(conn, events.c.at)
    rows = await conn.execute(
        select(minute, kind, func.count())
        .where(events.c.campaign_id == campaign_id, events.c.at >= start)
        .group_by(minute, kind)
    )
    base = start.replace(second=0, microsecond=0)
    last = int((now - base).total_seconds() // 60)
    out: dict[str, Any] = {name: [0] * (last + 1) for name in SERIES}
    for at, name, n in rows:
        offset = int((dt.datetime.fromisoformat(str(at)) - base).total_seconds() // 60)
        if name in out and 0 <= offset <= last:
            out[name][offset] += int(n)
    out["minutes_since_send"] = list(range(last + 1))
    out["started_at"] = base.isoformat() + "Z"
    return out
