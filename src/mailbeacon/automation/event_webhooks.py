"""Event webhook subscriptions: their shape, storage and delivery log.

A subscription sends every event of the types it names (`open`, `click`, `forward`,
`unsubscribe`, `bounce`) whose verdict it accepts (default: those that count as a
person, `human` and `proxy`; an inferred open is `human`) to its URL. Unsubscribes and
bounces carry no verdict worth weighing and always match. Secrets are answered masked.
Deleting a subscription cancels what it still had queued; pausing holds deliveries
back (they queue meanwhile, and go out in order on resume).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.model import SECRET_MASK
from mailbeacon.automation.ssrf import literal_private
from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import events
from mailbeacon.store.schema_webhooks import event_webhook_deliveries as outbox
from mailbeacon.store.schema_webhooks import event_webhooks
from mailbeacon.store.webhook_outbox import DEFAULT_VERDICTS

EventType = Literal["open", "click", "forward", "unsubscribe", "bounce"]
Verdict = Literal["human", "proxy", "prefetch", "scanner", "bot"]
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]


def http_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL")
    return v


def _unique(v: list[str]) -> list[str]:
    return list(dict.fromkeys(v))


class EventWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"},
    )
    secret: str = Field(min_length=8, max_length=200, description="signs each body (HMAC)")
    events: list[EventType] = Field(min_length=1, max_length=5)
    verdicts: list[Verdict] = Field(
        default_factory=lambda: list(DEFAULT_VERDICTS), min_length=1, max_length=5
    )

    _url = field_validator("url")(http_url)
    _events = field_validator("events", "verdicts")(_unique)


class EventWebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paused: bool = Field(description="true holds deliveries back; false sends them on")


_PUBLIC = [c for c in event_webhooks.c if c.name not in ("company_id", "after_event_id")]


def public(row: Any) -> dict[str, Any]:
    return {**dict(row), "secret": SECRET_MASK}


async def create(
    conn: AsyncConnection, who: Principal, body: EventWebhookIn, *, allow_private: bool = False
) -> dict[str, Any]:
    """Subscribe; a URL naming a non-public address outright (any spelling) is refused
    here, host names at each connection (`ssrf`)."""
    if not allow_private and (inside := literal_private(body.url)) is not None:
        raise Invalid(f"url: {body.url} leads to a non-public address ({inside})", field="url")
    at = now()
    newest = await conn.scalar(select(func.max(events.c.id)))
    result = await conn.execute(
        insert(event_webhooks)
        .values(
            **body.model_dump(),
            company_id=who.company_id,
            paused=False,
            after_event_id=newest or 0,
            created_by_user_id=who.user_id,
            created_at=at,
            updated_at=at,
        )
        .returning(event_webhooks.c.id)
    )
    return await get(conn, who.company_id, int(result.scalar_one()))


async def list_all(conn: AsyncConnection, company_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*_PUBLIC)
        .where(event_webhooks.c.company_id == company_id)
        .order_by(event_webhooks.c.id)
    )
    return [public(r) for r in rows.mappings()]


async def get(conn: AsyncConnection, company_id: int, webhook_id: int) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(*_PUBLIC).where(
                event_webhooks.c.id == webhook_id, event_webhooks.c.company_id == company_id
            )
        )
    ).mappings().first()  # fmt: skip
    if row is None:
        raise NotFound(f"webhook {webhook_id} does not exist")
    return public(row)


async def set_paused(
    conn: AsyncConnection, company_id: int, webhook_id: int, paused: bool
) -> dict[str, Any]:
    await get(conn, company_id, webhook_id)
    await conn.execute(
        update(event_webhooks)
        .where(event_webhooks.c.id == webhook_id)
        .values(paused=paused, updated_at=now())
    )
    return await get(conn, company_id, webhook_id)


async def remove(conn: AsyncConnection, company_id: int, webhook_id: int) -> None:
    """Delete the subscription; what it still had queued is cancelled, its log kept
    until the rows are erased with their lead."""
    await get(conn, company_id, webhook_id)
    await conn.execute(delete(event_webhooks).where(event_webhooks.c.id == webhook_id))
    await conn.execute(
        update(outbox)
        .where(outbox.c.webhook_id == webhook_id, outbox.c.status == "pending")
        .values(status="cancelled", last_error="webhook deleted")
    )


_LOG = [c for c in outbox.c if c.name not in ("payload", "company_id", "source")]


async def deliveries(
    conn: AsyncConnection, company_id: int, webhook_id: int, limit: int,
    status: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The subscription's delivery log, newest first: one row per event, with its
    attempts, last answer or error, next attempt and when it was delivered."""
    await get(conn, company_id, webhook_id)
    query = (
        select(*_LOG)
        .where(outbox.c.webhook_id == webhook_id, outbox.c.company_id == company_id)
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    if status is not None:
        query = query.where(outbox.c.status == status)
    return [dict(r) for r in (await conn.execute(query)).mappings()]
