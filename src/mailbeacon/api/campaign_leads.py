"""/api/v1/campaigns, the workspace half: who engaged, edit a draft, preview, test, progress.

- `GET /{id}/leads?engagement=`: the campaign's leads by engagement, keyset pages
  (`limit`, `cursor`, `Link: <...>; rel="next"`), or with `format=csv` every one of
  them as CSV. Tracking data: the roles that see tracking only.
- `PATCH /{id}`: a draft's fields; 409 once it is queued, sending or sent.
- `POST /{id}/preview` `{"lead_id"}`: the mail as that lead would get it.
- `POST /{id}/test` `{"email", "lead_id"?}`: one test copy through SMTP, never counted.
- `GET /{id}/progress`: status and counts, for a live progress bar.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from mailbeacon import delivery
from mailbeacon.analytics import engaged
from mailbeacon.api.campaigns import Schedule
from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.fields import TrackingIn
from mailbeacon.api.merge_fields import check_conditions
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.delivery import preview as previews
from mailbeacon.delivery.schedule import waiting_copies
from mailbeacon.store.render import jsonable
from mailbeacon.store.schema import leads, list_members

router = APIRouter(
    prefix="/api/v1/campaigns",
    tags=["campaigns"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
# `format=csv` answers the same leads as a spreadsheet.
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The leads"}
}
# Ids are 32-bit: anything else is no campaign of anyone's (422 naming the field, not 500).
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/{campaign_id}/leads", responses={**CSV, **FOUND})
async def campaign_leads(
    campaign_id: CampaignId,
    request: Request,
    engagement: Literal[engaged.ENGAGEMENTS] = Query(  # type: ignore[valid-type]
        description="opened, clicked, forwarded, not_opened, privacy_protected, "
        "unsubscribed or bounced (the campaign report's definitions)"
    ),
    limit: int = Query(engaged.DEFAULT_LIMIT, ge=1, le=engaged.MAX_LIMIT),
    cursor: str | None = Query(None, max_length=200, description="from the Link header"),
    format: Literal["json", "csv"] = "json",
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> Response:
    """The campaign's leads with this engagement, each with opens, clicks, first and
    last open, the links they clicked and the reason behind their verdicts."""
    async with svc.db.connect() as conn:
        page = await engaged.engaged_leads(
            conn, who.company_id, campaign_id, engagement, limit=limit, cursor=cursor
        )
    if format == "csv":
        return _csv(svc, who.company_id, campaign_id, engagement, page)
    headers = {}
    if page.next_cursor:
        headers["Link"] = (
            f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
        )
    return JSONResponse(page.items, headers=headers)


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: a leading = + - @ makes a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(
    svc: Services, company_id: int, campaign_id: int, engagement: str, first: engaged.Page
) -> StreamingResponse:
    """Every lead of the list from the requested page on, read page by page."""

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(engaged.CSV_COLUMNS)
        page: engaged.Page | None = first
        while page is not None:
            for item in page.items:
                writer.writerow([_cell(v) for v in engaged.csv_row(item)])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if page.next_cursor is None:
                return
            async with svc.db.connect() as conn:
                page = await engaged.engaged_leads(
                    conn,
                    company_id,
                    campaign_id,
                    engagement,
                    limit=engaged.MAX_LIMIT,
                    cursor=page.next_cursor,
                )

    name = f"campaign-{campaign_id}-{engagement}.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class CampaignPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(default=None, min_length=1, max_length=998)
    html: str | None = None
    text: str | None = None
    list_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    utm: dict[str, str] | None = None
    tags: list[str] | None = None
    pixel_placement: Literal["header", "body", "footer"] | None = None
    pixel_format: Literal["gif", "png"] | None = None
    forward_link: bool | None = None
    # Only the switches named change: {"opens": false} leaves clicks as they were.
    tracking: TrackingIn | None = None
    # null: send at once (see POST /api/v1/campaigns).
    schedule: Schedule | None = None


@router.patch("/{campaign_id}", responses={**BODY, **FOUND, **errors(409)})
async def update_campaign(
    campaign_id: CampaignId,
    body: CampaignPatch,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change a draft: only the fields sent change. 409 once it is no longer a draft."""
    changes = body.model_dump(exclude_unset=True)
    if "schedule" in changes:
        changes["schedule"] = body.schedule.model_dump(mode="json") if body.schedule else None
    for name in ("name", "subject", "html", "list_id", "pixel_placement", "pixel_format"):
        if name in changes and changes[name] is None:
            raise ApiError(422, "invalid", f"{name} must not be null", name)
    if {"subject", "html", "text"} & set(changes):
        async with svc.db.connect() as conn:
            current = await crm_campaigns.get_campaign(conn, who.company_id, campaign_id)
        merged = {k: changes.get(k, current[k]) for k in ("subject", "html", "text")}
        check_conditions({k: v for k, v in merged.items() if k in changes})
        try:
            delivery.check_templates(merged["subject"], merged["html"], merged["text"])
        except ValueError as e:
            field = next((k for k in ("subject", "html", "text") if k in changes), "html")
            raise ApiError(422, "invalid", f"template: {e}", field) from None
    async with svc.db.begin() as conn:
        return jsonable(
            await crm_campaigns.update_campaign(conn, who.company_id, campaign_id, changes)
        )


@contextlib.contextmanager
def _mail_errors(campaign_id: int, lead_id: int | None) -> Iterator[None]:
    """Delivery's errors as the API's answers."""
    try:
        yield
    except delivery.CampaignNotFound:
        raise ApiError(404, "not_found", f"campaign {campaign_id} does not exist") from None
    except delivery.LeadNotFound:
        raise ApiError(404, "not_found", f"lead {lead_id} does not exist", "lead_id") from None
    except delivery.Suppressed as e:
        raise ApiError(409, "conflict", str(e), "lead_id") from None
    except ValueError as e:
        raise ApiError(422, "invalid", f"template: {e}", "html") from None
    except delivery.DeliveryError as e:
        raise ApiError(502, "delivery_failed", f"the SMTP server said: {e}", "email") from None


class PreviewIn(BaseModel):
    lead_id: int = Field(ge=1, le=2**31 - 1)


@router.post("/{campaign_id}/preview", responses={**BODY, **FOUND, **errors(409)})
async def preview_campaign(
    campaign_id: CampaignId,
    body: PreviewIn,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The campaign as this lead would get it: merge fields filled, the pixel and the
    tracked links in place (signed by a key no edge knows: they record nothing),
    and the warnings (Gmail's clipping, with the size). Stores and sends nothing."""
    async with svc.db.connect() as conn:
        with _mail_errors(campaign_id, body.lead_id):
            return await previews.preview(
                conn, svc.settings, who.company_id, campaign_id, body.lead_id
            )


class TestIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$")
    lead_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


@router.post("/{campaign_id}/test", responses={**BODY, **FOUND, **errors(409, 502)})
async def send_test(
    campaign_id: CampaignId,
    body: TestIn,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Send one test copy to any address: "[Test]" subject, links straight to their
    destinations, an inert pixel; no lead, message or event is ever made of it."""
    async with svc.db.connect() as conn:
        with _mail_errors(campaign_id, body.lead_id):
            return await previews.send_test(
                conn, svc.settings, who.company_id, campaign_id, body.email, lead_id=body.lead_id
            )


@router.get("/{campaign_id}/progress", responses=FOUND)
async def campaign_progress(
    campaign_id: CampaignId,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """`{"status", "recipients", "sent", "failed", "skipped", "done"}`. Recipients: the
    list's leads while a draft (`deliverable`: those mail may go to), and once sending,
    what has been processed plus what is left; sent + failed + skipped reaches it.
    `scheduled`: copies waiting for their time, `next_at` / `last_at`: the first and the
    last of those times (null when none waits)."""
    async with svc.db.connect() as conn:
        c = await crm_campaigns.get_campaign(conn, who.company_id, campaign_id)
        waiting = await waiting_copies(conn, who.company_id, campaign_id)
        members = deliverable = 0
        if c["list_id"] is not None:
            in_list = (
                select(func.count())
                .select_from(list_members.join(leads, leads.c.id == list_members.c.lead_id))
                .where(list_members.c.list_id == c["list_id"], leads.c.company_id == who.company_id)
            )
            members = int(await conn.scalar(in_list) or 0)
            deliverable = int(
                await conn.scalar(in_list.where(leads.c.status.not_in(("unsubscribed", "bounced"))))
                or 0
            )
    processed = c["sent_count"] + c["failed_count"] + c["skipped_count"]
    done = c["status"] == "sent"
    recipients = processed if done else max(members, processed)
    return {
        "campaign_id": campaign_id,
        "status": c["status"],
        "recipients": recipients,
        "deliverable": deliverable,
        "sent": c["sent_count"],
        "failed": c["failed_count"],
        "skipped": c["skipped_count"],
        "done": done,
        **jsonable(waiting),
        "percent": round(100 * processed / recipients, 1)
        if recipients
        else (100.0 if done else 0.0),
    }
