"""Campaigns: one subject and body sent to every subscribed lead of a list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.crm.lists import get_list
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns

PIXEL_PLACEMENTS = ("header", "body", "footer")
PIXEL_FORMATS = ("gif", "png")
UTM_KEYS = ("source", "medium", "campaign", "content", "term")

CAMPAIGN_FIELDS = (
    campaigns.c.id,
    campaigns.c.name,
    campaigns.c.subject,
    campaigns.c.html,
    campaigns.c.text,
    campaigns.c.list_id,
    campaigns.c.utm,
    campaigns.c.tags,
    campaigns.c.pixel_placement,
    campaigns.c.pixel_format,
    campaigns.c.forward_link,
    campaigns.c.status,
    campaigns.c.sent_count,
    campaigns.c.skipped_count,
    campaigns.c.failed_count,
    campaigns.c.created_at,
    campaigns.c.sent_at,
)


def check_utm(utm: dict[str, Any] | None) -> dict[str, str] | None:
    if not utm:
        return None
    unknown = sorted(set(utm) - set(UTM_KEYS))
    if unknown:
        raise Invalid(f"utm: unknown keys {unknown}; use {list(UTM_KEYS)}", field="utm")
    return {k: str(v) for k, v in utm.items() if v not in (None, "")}


async def create_campaign(
    conn: AsyncConnection,
    who: Principal,
    *,
    name: str,
    subject: str,
    html: str,
    list_id: int,
    text: str | None = None,
    utm: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    pixel_placement: str = "body",
    pixel_format: str = "gif",
    forward_link: bool = False,
) -> dict[str, Any]:
    if not name.strip():
        raise Invalid("name must not be empty", field="name")
    if not subject.strip():
        raise Invalid("subject must not be empty", field="subject")
    if pixel_placement not in PIXEL_PLACEMENTS:
        raise Invalid(f"pixel_placement must be one of {PIXEL_PLACEMENTS}", field="pixel_placement")
    if pixel_format not in PIXEL_FORMATS:
        raise Invalid(f"pixel_format must be one of {PIXEL_FORMATS}", field="pixel_format")
    try:
        await get_list(conn, who.company_id, list_id)
    except NotFound as e:
        e.field = "list_id"
        raise
    result = await conn.execute(
        insert(campaigns)
        .values(
            company_id=who.company_id,
            name=name.strip(),
            subject=subject,
            html=html,
            text=text,
            list_id=list_id,
            utm=check_utm(utm),
            tags=tags or [],
            pixel_placement=pixel_placement,
            pixel_format=pixel_format,
            forward_link=bool(forward_link),
            status="draft",
            sent_count=0,
            skipped_count=0,
            failed_count=0,
            created_at=now(),
        )
        .returning(campaigns.c.id)
    )
    return await get_campaign(conn, who.company_id, int(result.scalar_one()))


async def get_campaign(conn: AsyncConnection, company_id: int, campaign_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(*CAMPAIGN_FIELDS).where(
                    campaigns.c.id == campaign_id, campaigns.c.company_id == company_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return dict(row)


async def list_campaigns(conn: AsyncConnection, company_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*CAMPAIGN_FIELDS)
        .where(campaigns.c.company_id == company_id)
        .order_by(campaigns.c.id.desc())
    )
    return [dict(r) for r in rows.mappings()]
