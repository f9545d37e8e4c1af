"""Queueing events for event webhooks: which subscriptions want an event, and the
outbox rows that say so.

Here in `store` because two flows queue: the webhook fan-out (automation) for events it
reads by cursor, and delivery when it records a hard bounce (bounces are not `events`
rows; they are queued in the very transaction that marks the lead bounced).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.db import now
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.render import iso
from mailbeacon.store.schema_webhooks import event_webhook_deliveries, event_webhooks

EVENT_TYPES = ("open", "click", "forward", "unsubscribe", "bounce")
VERDICTS = ("human", "proxy", "prefetch", "scanner", "bot")
# Those that count as a person (an inferred open is judged `human`): the report's rule.
DEFAULT_VERDICTS = ("human", "proxy")
# Authorised by the lead's signed token, or by the mail server: no verdict to weigh.
VERDICTLESS = frozenset({"unsubscribe", "bounce"})


@dataclass(frozen=True, slots=True)
class Subscription:
    """What matching needs of an `event_webhooks` row."""

    id: int
    company_id: int
    events: frozenset[str]
    verdicts: frozenset[str]
    after_event_id: int = 0

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Subscription:
        events, verdicts = frozenset(row["events"]), frozenset(row["verdicts"])
        after = int(row.get("after_event_id") or 0)
        return cls(int(row["id"]), int(row["company_id"]), events, verdicts, after)

    def wants(self, event_type: str, verdict: str | None, event_id: int | None = None) -> bool:
        if event_type not in self.events:
            return False
        if event_id is not None and event_id <= self.after_event_id:
            return False  # it happened before the subscription was made
        return event_type in VERDICTLESS or verdict in self.verdicts


async def subscriptions_of(
    conn: AsyncConnection, company_ids: Iterable[int]
) -> dict[int, list[Subscription]]:
    """Every company's subscriptions, paused ones included (a pause holds deliveries
    back; what happens meanwhile is still queued and sent on resume)."""
    found: dict[int, list[Subscription]] = {c: [] for c in company_ids}
    if not found:
        return found
    rows = await conn.execute(
        select(event_webhooks.c.id, event_webhooks.c.company_id, event_webhooks.c.events,
               event_webhooks.c.verdicts, event_webhooks.c.after_event_id)
        .where(event_webhooks.c.company_id.in_(list(found)))
        .order_by(event_webhooks.c.id)
    )  # fmt: skip
    for row in rows.mappings():
        found[int(row["company_id"])].append(Subscription.of(row))
    return found


def outbox_row(
    sub: Subscription, lead_id: int, event_id: int | None, event_type: str, source: str,
    payload: str, at: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "webhook_id": sub.id,
        "company_id": sub.company_id,
        "lead_id": lead_id,
        "event_id": event_id,
        "event_type": event_type,
        "source": source,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
    }


async def queue(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert outbox rows; one already queued for its (subscription, source) is kept."""
    if rows:
        into = dialect_insert(conn, event_webhook_deliveries).on_conflict_do_nothing()
        await conn.execute(into, rows)


async def queue_bounce(
    conn: AsyncConnection, *, company_id: int, lead_id: int, message_id: int,
    campaign_id: int | None, error: str | None,
) -> int:  # fmt: skip
    """Queue a hard bounce for the company's subscriptions to `bounce`; how many."""
    subs = (await subscriptions_of(conn, [company_id]))[company_id]
    wanted = [s for s in subs if s.wants("bounce", None)]
    if not wanted:
        return 0
    at = now()
    payload = json.dumps(bounce_event(at, message_id, lead_id, campaign_id, error))
    source = f"bounce:{message_id}"
    await queue(conn, [outbox_row(s, lead_id, None, "bounce", source, payload, at) for s in wanted])
    return len(wanted)


def bounce_event(
    at: Any, message_id: int, lead_id: int, campaign_id: int | None, error: str | None
) -> dict[str, Any]:
    """A bounce in the event shape: no `events` row, so no id and no verdict; `reason`
    is what the mail server answered."""
    return {
        "id": None,
        "type": "bounce",
        "at": iso(at),
        "message_id": message_id,
        "lead_id": lead_id,
        "campaign_id": campaign_id,
        "verdict": None,
        "reason": error or "the mail server refused the address",
        "inferred": False,
        "forwarded": False,
    }
