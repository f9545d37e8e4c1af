"""The event webhook fan-out: read events after cursor `event_webhooks`, queue one
outbox row per event and matching subscription.

One batch is one transaction: the rows and the cursor advance commit together, and the
cursor moves by compare-and-set (a second process that lost its lease rolls back), so
an event is queued once per subscription however often it is read. A subscription hears
of events after the newest one when it was made (`after_event_id`), never history.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.consumer import EVENT_COLUMNS, LostCursor, event_payload
from mailbeacon.store import now
from mailbeacon.store.schema import events
from mailbeacon.store.stages import move_cursor, read_cursor
from mailbeacon.store.webhook_outbox import outbox_row, queue, subscriptions_of

CURSOR = "event_webhooks"


async def fan_out_batch(conn: AsyncConnection, limit: int) -> tuple[int, int]:
    """Queue the next events for their subscriptions; returns (events read, rows queued)."""
    position = await read_cursor(conn, CURSOR)
    result = await conn.execute(
        select(*EVENT_COLUMNS).where(events.c.id > position).order_by(events.c.id).limit(limit)
    )
    rows = result.mappings().all()
    if not rows:
        return 0, 0
    subs = await subscriptions_of(conn, {int(r["company_id"]) for r in rows})
    at = now()
    queued: list[dict[str, Any]] = []
    for row in rows:
        payload = None
        for sub in subs[int(row["company_id"])]:
            if not sub.wants(row["type"], row["verdict"], int(row["id"])):
                continue
            if payload is None:  # once per event, whatever it is queued for
                payload = json.dumps(event_payload(row))
            event_id = int(row["id"])
            queued.append(
                outbox_row(sub, int(row["lead_id"]), event_id, row["type"], f"event:{event_id}",
                           payload, at)
            )  # fmt: skip
    await queue(conn, queued)
    if not await move_cursor(conn, CURSOR, position, int(rows[-1]["id"])):
        raise LostCursor(f"cursor {CURSOR} moved by another process")
    return len(rows), len(queued)
