"""/api/v1/campaigns: create, send and report on campaigns."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from mailbeacon import delivery
from mailbeacon.analytics import report as analytics
from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.fields import Id, PathId, TrackingIn
from mailbeacon.api.merge_fields import check_merge_fields
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.compose.model import PixelFormat, PixelPlacement
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm.access import Permission
from mailbeacon.crm.campaigns import MAX_WITHIN_HOURS, UTM_KEYS, check_schedule
from mailbeacon.crm.errors import Invalid
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/campaigns",
    tags=["campaigns"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
UtmKey = Literal[UTM_KEYS]  # type: ignore[valid-type]


class SendAt(BaseModel):
    """Send every copy at this time (ISO-8601; without an offset it is UTC)."""

    model_config = ConfigDict(extra="forbid")
    at: dt.datetime


class SendAtBestHour(BaseModel):
    """Send each lead's copy at the hour they usually open, within this many hours."""

    model_config = ConfigDict(extra="forbid")
    best_hour: Literal[True]
    within_hours: int = Field(24, ge=1, le=MAX_WITHIN_HOURS)


# null: at once. Each message shows its `scheduled_at`.
Schedule = SendAt | SendAtBestHour


def stored_schedule(schedule: Schedule | None) -> dict[str, Any] | None:
    return check_schedule(schedule.model_dump(mode="json") if schedule else None)


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=998)
    html: str
    text: str | None = None
    list_id: Id
    utm: dict[UtmKey, str] | None = None
    tags: list[str] | None = None
    pixel_placement: PixelPlacement = "body"
    pixel_format: PixelFormat = "gif"
    # A visible "Forward to a friend" link (/f/) in every mail's footer.
    forward_link: bool = False
    tracking: TrackingIn = Field(default_factory=TrackingIn)
    schedule: Schedule | None = None


@router.post("", status_code=201, responses={**BODY, **errors(404)})
async def create_campaign(
    body: CampaignIn,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        templates = {"subject": body.subject, "html": body.html, "text": body.text}
        await check_merge_fields(conn, who.company_id, templates)
        fields = body.model_dump(exclude={"schedule"})
        fields["schedule"] = stored_schedule(body.schedule)
        return jsonable(await crm_campaigns.create_campaign(conn, who, **fields))


@router.get("")
async def list_campaigns(
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> list[dict[str, Any]]:
    async with svc.db.connect() as conn:
        return [jsonable(c) for c in await crm_campaigns.list_campaigns(conn, who.company_id)]


@router.get("/{campaign_id}", responses=FOUND)
async def get_campaign(
    campaign_id: PathId,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await crm_campaigns.get_campaign(conn, who.company_id, campaign_id))


class SendIn(BaseModel):
    # Given (null included: at once), it replaces the draft's own schedule.
    schedule: Schedule | None = None


@router.post("/{campaign_id}/send", status_code=202, responses={**FOUND, **errors(409)})
async def send_campaign(
    campaign_id: PathId,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
    body: SendIn | None = Body(default=None),
) -> dict[str, Any]:
    """Queue a draft: 202. The sender stage sends each copy at the time the campaign's
    schedule (or the one in this body) gives it; GET /progress follows it."""
    async with svc.db.connect() as conn:
        campaign = await crm_campaigns.get_campaign(conn, who.company_id, campaign_id)
    try:
        delivery.check_templates(campaign["subject"], campaign["html"], campaign["text"])
    except ValueError as e:
        raise ApiError(422, "invalid", f"template: {e}", "html") from None
    # The campaign sender stage picks it up (durably: a restart resumes the send);
    # progress is on the campaign (status, sent/skipped/failed counts).
    schedule: Any = delivery.KEEP
    if body is not None and "schedule" in body.model_fields_set:
        try:
            schedule = stored_schedule(body.schedule)
        except Invalid as e:
            raise ApiError(422, "invalid", e.message, "schedule") from None
    if not await delivery.queue_campaign(svc.db, who.company_id, campaign_id, schedule):
        raise ApiError(409, "conflict", f"campaign {campaign_id} is {campaign['status']} already")
    return {"id": campaign_id, "status": "queued"}


@router.get("/{campaign_id}/report", responses=FOUND)
async def campaign_report(
    campaign_id: PathId,
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await analytics.campaign_report(conn, who.company_id, campaign_id))
