"""/api/v1/leads: create and read leads; their engagement and activity are tracking data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mailbeacon.analytics.engagement import lead_engagement
from mailbeacon.analytics.events import lead_activity
from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.fields import Id, PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/leads",
    tags=["leads"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
# Fields of a lead that come from tracking, left out for roles without VIEW_TRACKING.
TRACKING_FIELDS = ("score", "engagement")


def without_tracking(who: Principal, lead: dict[str, Any]) -> dict[str, Any]:
    """The lead as `who` may see it: the sales roles get no tracking-derived field."""
    if not allowed(who.role, who.plan, Permission.VIEW_TRACKING):
        for name in TRACKING_FIELDS:
            lead.pop(name, None)
    return lead


class LeadIn(BaseModel):
    email: str = Field(max_length=320, json_schema_extra={"format": "email"})
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    owner_user_id: Id | None = None
    # False: never tracked (no consent); their mail has no pixel and no tracked links.
    tracking: bool = True


@router.post("", status_code=201, responses={**BODY, **errors(404, 409)})
async def create_lead(
    body: LeadIn,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        lead = await crm_leads.create_lead(conn, who, **body.model_dump())
    return without_tracking(who, jsonable(lead))


@router.get("/{lead_id}", responses=FOUND)
async def get_lead(
    lead_id: PathId,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        lead = jsonable(await crm_leads.get_lead(conn, who, lead_id))
        # Engagement is tracking data: the sales roles see their lead, not how it engaged
        # (the score is built from opens and clicks by rules, so it goes too).
        if allowed(who.role, who.plan, Permission.VIEW_TRACKING):
            lead["engagement"] = jsonable(await lead_engagement(conn, who.company_id, lead_id))
    return without_tracking(who, lead)


@router.get("/{lead_id}/activity", responses=FOUND)
async def get_activity(
    lead_id: PathId,
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> list[dict[str, Any]]:
    async with svc.db.connect() as conn:
        await crm_leads.get_lead(conn, who, lead_id)
        return [jsonable(e) for e in await lead_activity(conn, who.company_id, lead_id)]
