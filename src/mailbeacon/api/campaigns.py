"""/api/v1/campaigns: create, send and report on campaigns."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

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
from mailbeacon.crm.campaigns import UTM_KEYS
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/campaigns",
    tags=["campaigns"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
UtmKey = Literal[UTM_KEYS]  # type: ignore[valid-type]


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


@router.post("", status_code=201, responses={**BODY, **errors(404)})
async def create_campaign(
    body: CampaignIn,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        templates = {"subject": body.subject, "html": body.html, "text": body.text}
        await check_merge_fields(conn, who.company_id, templates)
        return jsonable(await crm_campaigns.create_campaign(conn, who, **body.model_dump()))


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


@router.post("/{campaign_id}/send", status_code=202, responses={**FOUND, **errors(409)})
async def send_campaign(
    campaign_id: PathId,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        campaign = await crm_campaigns.get_campaign(conn, who.company_id, campaign_id)
    try:
        delivery.check_templates(campaign["subject"], campaign["html"], campaign["text"])
    except ValueError as e:
        raise ApiError(422, "invalid", f"template: {e}", "html") from None
    # The campaign sender stage picks it up (durably: a restart resumes the send);
    # progress is on the campaign (status, sent/skipped/failed counts).
    if not await delivery.queue_campaign(svc.db, who.company_id, campaign_id):
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
