"""Event listings: a message's events (oldest first) and a lead's activity (newest first)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.schema import events

EVENT_FIELDS = (
    events.c.id,
    events.c.type,
    events.c.at,
    events.c.message_id,
    events.c.lead_id,
    events.c.campaign_id,
    events.c.verdict,
    events.c.reason,
    events.c.inferred,
    events.c.forwarded,
    events.c.client,
    events.c.device,
    events.c.device_model,
    events.c.os,
    events.c.country,
    events.c.region,
    events.c.city,
    events.c.url,
)


async def message_events(
    conn: AsyncConnection, company_id: int, message_id: int, limit: int = 10_000
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*EVENT_FIELDS)
        .where(events.c.company_id == company_id, events.c.message_id == message_id)
        .order_by(events.c.at, events.c.id)
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]


async def lead_activity(
    conn: AsyncConnection, company_id: int, lead_id: int, limit: int = 1_000
) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*EVENT_FIELDS)
        .where(events.c.company_id == company_id, events.c.lead_id == lead_id)
        .order_by(events.c.at.desc(), events.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in rows.mappings()]
