"""/api/v1/messages: one tracked email to one lead, its raw hit counts and its events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from mailbeacon import delivery
from mailbeacon.analytics.events import message_events
from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.fields import Id, PathId, TrackingIn
from mailbeacon.api.merge_fields import check_merge_fields
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.crm.access import Permission
from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.leads import get_lead
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.store.schema import hits, message_links, messages

router = APIRouter(
    prefix="/api/v1/messages",
    tags=["messages"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)


class MessageIn(BaseModel):
    lead_id: Id
    subject: str = Field(min_length=1, max_length=998)
    html: str
    text: str | None = None
    campaign_id: Id | None = None
    send: bool = True
    # A "Forward to a friend" link in the footer; null: as the campaign says (else off).
    forward_link: bool | None = None
    # Null: as the campaign says (else both on). A lead not tracked gets neither.
    tracking: TrackingIn | None = None


@router.post("", status_code=201, responses={**BODY, **errors(404, 409)})
async def create_message(
    body: MessageIn,
    who: Principal = Depends(require(Permission.SEND_EMAIL)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        # The sales roles send to the leads they own; another company's lead is a 404.
        await get_lead(conn, who, body.lead_id)
        templates = {"subject": body.subject, "html": body.html, "text": body.text}
        await check_merge_fields(conn, who.company_id, templates)
    try:
        return jsonable(
            await delivery.create_message(
                svc.db,
                svc.settings,
                svc.signer,
                company_id=who.company_id,
                lead_id=body.lead_id,
                subject=body.subject,
                html=body.html,
                text=body.text,
                campaign_id=body.campaign_id,
                send=body.send,
                forward_link=body.forward_link,
                tracking=_tracking(body.tracking),
            )
        )
    except delivery.Suppressed as e:
        raise ApiError(409, "suppressed", str(e), "lead_id") from None
    except delivery.LeadNotFound as e:
        raise ApiError(404, "not_found", str(e), "lead_id") from None
    except delivery.CampaignNotFound as e:
        raise ApiError(404, "not_found", str(e), "campaign_id") from None
    except ValueError as e:
        raise ApiError(422, "invalid", f"template: {e}", "html") from None


def _tracking(asked: TrackingIn | None) -> delivery.Tracking | None:
    return None if asked is None else delivery.Tracking(asked.opens, asked.clicks)


async def _message(conn: Any, company_id: int, message_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(messages).where(
                    messages.c.id == message_id, messages.c.company_id == company_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return dict(row)


@router.get("/{message_id}", responses=FOUND)
async def get_message(
    message_id: PathId,
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        msg = await _message(conn, who.company_id, message_id)
        links = (
            await conn.execute(
                select(message_links.c.link_index, message_links.c.url)
                .where(message_links.c.message_id == message_id, message_links.c.kind == "link")
                .order_by(message_links.c.link_index)
            )
        ).all()
        counts = dict(
            (
                await conn.execute(
                    select(hits.c.kind, func.count())
                    .where(
                        hits.c.message_id == message_id,
                        hits.c.company_id == who.company_id,
                        hits.c.method != "HEAD",
                    )
                    .group_by(hits.c.kind)
                )
            ).all()
        )
    out = jsonable(msg)
    out.pop("company_id", None)
    out["tracking"] = {"opens": out.pop("track_opens"), "clicks": out.pop("track_clicks")}
    out["links"] = [{"index": i, "url": u} for i, u in links]
    out["hits"] = {"open": counts.get("open", 0), "click": counts.get("click", 0)}
    return out


@router.get("/{message_id}/events", responses=FOUND)
async def get_events(
    message_id: PathId,
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> list[dict[str, Any]]:
    async with svc.db.connect() as conn:
        await _message(conn, who.company_id, message_id)
        return [jsonable(e) for e in await message_events(conn, who.company_id, message_id)]
