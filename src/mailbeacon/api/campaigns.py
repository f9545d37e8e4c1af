"""/api/v1/campaigns: create, send and report on campaigns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mailbeacon import delivery
from mailbeacon.analytics import report as analytics
from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.merge_fields import check_merge_fields
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=998)
    html: str
    text: str | None = None
    list_id: int
    utm: dict[str, str] | None = None
    tags: list[str] | None = None
    pixel_placement: str = "body"
    pixel_format: str = "gif"


@router.post("", status_code=201)
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


@router.get("/{campaign_id}")
async def get_campaign(
    campaign_id: int,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await crm_campaigns.get_campaign(conn, who.company_id, campaign_id))


@router.post("/{campaign_id}/send", status_code=202)
async def send_campaign(
    campaign_id: int,
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


@router.get("/{campaign_id}/report")
async def campaign_report(
    campaign_id: int,
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await analytics.campaign_report(conn, who.company_id, campaign_id))
