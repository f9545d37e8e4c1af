"""Deleting hits and events without freeing the highest id.

The stages read `hits` and `events` by id, behind a cursor. SQLite gives a new row the
highest id plus one, so deleting the row with the highest id (an erased lead's latest
open) would hand its id to the next hit, already behind the enrich cursor: never read.
On both engines, the rollups stage takes "the highest event id went below my cursor"
for a rewrite of all events, and rebuilds every report.

So the highest row is never deleted: it is emptied instead, into a *tombstone* that
names no one (no company, message or lead, no address, type `erased`), which no stage
acts on and no query of a company finds. `sweep` deletes tombstones once a newer row
stands above them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.schema import events, hits

ERASED = "erased"
_EMPTY: dict[str, dict[str, Any]] = {
    "hits": {
        "kind": ERASED, "company_id": 0, "message_id": 0, "lead_id": 0, "link_index": None,
        "ip": None, "user_agent": None, "accept_language": None,
    },
    "events": {
        "type": ERASED, "hit_id": None, "company_id": 0, "message_id": 0, "lead_id": 0,
        "campaign_id": None, "reason": "", "client": None, "device": None,
        "device_model": None, "os": None, "country": None, "region": None, "city": None,
        "url": None, "link_index": None, "ip": None,
    },
}  # fmt: skip


async def delete_rows(conn: AsyncConnection, table: Table, where: ColumnElement[bool]) -> None:
    """Delete the rows of `hits` or `events` that match, leaving a tombstone for the
    highest id of the table if it is one of them."""
    top = await conn.scalar(select(func.max(table.c.id)))
    if top is None:
        return
    await conn.execute(update(table).where(where, table.c.id == top).values(**_EMPTY[table.name]))
    await conn.execute(delete(table).where(where, table.c.id != top))


def _tombstone(table: Table) -> ColumnElement[bool]:
    # On the message-id index of both tables: message 0 is never a message.
    return and_(table.c.message_id == 0, table.c.lead_id == 0, table.c.company_id == 0)


async def sweep(conn: AsyncConnection) -> None:
    """Delete the tombstones that are no longer the highest row of their table."""
    for table in (hits, events):
        top = select(func.max(table.c.id)).scalar_subquery()
        await conn.execute(delete(table).where(_tombstone(table), table.c.id < top))
