"""/api/v1/webhooks: event webhook subscriptions and their delivery logs.

Tracking settings: the three sales roles get 403; another company's webhook answers
404. Secrets are answered masked. A URL naming a non-public address outright (any
spelling) is refused here with a 422; host names are checked at each connection.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.fields import PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND
from mailbeacon.automation import event_webhooks as store
from mailbeacon.automation.event_webhooks import (
    DeliveryStatus,
    EventWebhookIn,
    EventWebhookPatch,
)
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
CAN = Depends(require(Permission.MANAGE_TRACKING))


@router.post("", status_code=201, responses=BODY)
async def create_webhook(
    body: EventWebhookIn, who: Principal = CAN, svc: Services = Depends(services)
) -> dict[str, Any]:
    """Subscribe a URL to event types and verdicts (default: `human` and `proxy`)."""
    allow = svc.settings.webhook_allow_private
    async with svc.db.begin() as conn:
        return jsonable(await store.create(conn, who, body, allow_private=allow))


@router.get("")
async def list_webhooks(who: Principal = CAN, svc: Services = Depends(services)) -> list[Any]:
    async with svc.db.connect() as conn:
        return [jsonable(w) for w in await store.list_all(conn, who.company_id)]


@router.get("/{webhook_id}", responses=FOUND)
async def get_webhook(
    webhook_id: PathId, who: Principal = CAN, svc: Services = Depends(services)
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await store.get(conn, who.company_id, webhook_id))


@router.patch("/{webhook_id}", responses={**BODY, **FOUND})
async def pause_webhook(
    webhook_id: PathId, body: EventWebhookPatch, who: Principal = CAN,
    svc: Services = Depends(services),
) -> dict[str, Any]:  # fmt: skip
    """`{"paused": true}` holds deliveries back (events still queue); false sends them on."""
    async with svc.db.begin() as conn:
        return jsonable(await store.set_paused(conn, who.company_id, webhook_id, body.paused))


@router.delete("/{webhook_id}", status_code=204, responses=FOUND)
async def delete_webhook(
    webhook_id: PathId, who: Principal = CAN, svc: Services = Depends(services)
) -> Response:
    async with svc.db.begin() as conn:
        await store.remove(conn, who.company_id, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", responses=FOUND)
async def list_deliveries(
    webhook_id: PathId,
    limit: int = Query(100, ge=1, le=1000),
    status: DeliveryStatus | None = Query(None, description="only deliveries in this state"),
    who: Principal = CAN,
    svc: Services = Depends(services),
) -> list[Any]:
    """The delivery log, newest first: `id` (the `X-Mailbeacon-Delivery` header),
    `event_id`, `event_type`, `lead_id`, `status`, `attempts`, `last_status`,
    `last_error`, `next_attempt_at` (while pending), `delivered_at`."""
    async with svc.db.connect() as conn:
        rows = await store.deliveries(conn, who.company_id, webhook_id, limit, status)
    for row in rows:
        if row["status"] != "pending":
            row["next_attempt_at"] = None
    return [jsonable(r) for r in rows]
