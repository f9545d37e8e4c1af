"""/api/v1/rules: automation rules, their last runs and their webhook deliveries.

Rules are tracking settings: the three sales roles get 403; another company's rule
answers 404. Webhook secrets are answered masked; sending the mask back keeps them.
A webhook URL naming a non-public address outright (any spelling) is refused here with a
422; host names are checked at each delivery, where they are resolved.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.fields import PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND
from mailbeacon.automation import rules as store
from mailbeacon.automation.model import RuleIn, RulePatch
from mailbeacon.automation.ssrf import literal_private
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/rules",
    tags=["rules"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
CAN = Depends(require(Permission.MANAGE_TRACKING))


def _refuse_private_webhooks(svc: Services, actions: list[Any] | None) -> None:
    if svc.settings.webhook_allow_private:
        return
    for i, action in enumerate(actions or ()):
        if action.type == "webhook" and (inside := literal_private(action.url)) is not None:
            field = f"actions.{i}.webhook.url"  # as pydantic names a field of this union
            raise ApiError(
                422, "invalid", f"{field}: {action.url} leads to a non-public address ({inside})",
                field,
            )  # fmt: skip


@router.post("", status_code=201, responses=BODY)
async def create_rule(
    body: RuleIn, who: Principal = CAN, svc: Services = Depends(services)
) -> dict[str, Any]:
    _refuse_private_webhooks(svc, body.actions)
    async with svc.db.begin() as conn:
        return jsonable(await store.create_rule(conn, who, body))


@router.get("")
async def list_rules(who: Principal = CAN, svc: Services = Depends(services)) -> list[Any]:
    async with svc.db.connect() as conn:
        return [jsonable(r) for r in await store.list_rules(conn, who.company_id)]


@router.get("/{rule_id}", responses=FOUND)
async def get_rule(
    rule_id: PathId, who: Principal = CAN, svc: Services = Depends(services)
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await store.get_rule(conn, who.company_id, rule_id))


@router.patch("/{rule_id}", responses={**BODY, **FOUND})
async def patch_rule(
    rule_id: PathId, body: RulePatch, who: Principal = CAN, svc: Services = Depends(services)
) -> dict[str, Any]:
    _refuse_private_webhooks(svc, body.actions)
    async with svc.db.begin() as conn:
        return jsonable(await store.update_rule(conn, who.company_id, rule_id, body))


@router.delete("/{rule_id}", status_code=204, responses=FOUND)
async def delete_rule(
    rule_id: PathId, who: Principal = CAN, svc: Services = Depends(services)
) -> Response:
    async with svc.db.begin() as conn:
        await store.delete_rule(conn, who.company_id, rule_id)
    return Response(status_code=204)


@router.get("/{rule_id}/runs", responses=FOUND)
async def list_runs(
    rule_id: PathId,
    limit: int = Query(50, ge=1, le=500),
    who: Principal = CAN,
    svc: Services = Depends(services),
) -> list[Any]:
    """The rule's last runs, newest first, each with its jobs (one per action)."""
    async with svc.db.connect() as conn:
        runs = await store.list_runs(conn, who.company_id, rule_id, limit)
    return [{**jsonable(r), "jobs": [jsonable(j) for j in r["jobs"]]} for r in runs]


@router.get("/{rule_id}/deliveries", responses=FOUND)
async def list_deliveries(
    rule_id: PathId,
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = CAN,
    svc: Services = Depends(services),
) -> list[Any]:
    """Every webhook attempt of the rule, newest first: status code, error, duration."""
    async with svc.db.connect() as conn:
        rows = await store.list_deliveries(conn, who.company_id, rule_id, limit)
    return [jsonable(r) for r in rows]
