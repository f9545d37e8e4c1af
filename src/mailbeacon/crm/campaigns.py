"""Campaigns: one subject and body sent to every subscribed lead of a list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Conflict, Invalid, NotFound
from mailbeacon.crm.lists import get_list
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns

PIXEL_PLACEMENTS = ("header", "body", "footer")
PIXEL_FORMATS = ("gif", "png")
UTM_KEYS = ("source", "medium", "campaign", "content", "term")
MAX_WITHIN_HOURS = 168  # a week: a best-hour window longer than that is a different campaign


def check_schedule(schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    """The schedule as stored: None (send at once), {"at": ISO-8601 in UTC} or
    {"best_hour": True, "within_hours": N}, 1 <= N <= 168. Invalid names the field."""
    if not schedule:
        return None
    if set(schedule) == {"at"}:
        try:
            at = dt.datetime.fromisoformat(str(schedule["at"]).replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("schedule.at must be an ISO-8601 time", field="schedule") from None
        at = at.astimezone(dt.UTC) if at.tzinfo else at.replace(tzinfo=dt.UTC)
        return {"at": at.isoformat().replace("+00:00", "Z")}
    within = schedule.get("within_hours", 24)
    if (
        set(schedule) <= {"best_hour", "within_hours"}
        and schedule.get("best_hour") is True
        and isinstance(within, int)
        and not isinstance(within, bool)
        and 1 <= within <= MAX_WITHIN_HOURS
    ):
        return {"best_hour": True, "within_hours": within}
    raise Invalid(
        'schedule must be null, {"at": ISO-8601} or {"best_hour": true, "within_hours": N} '
        f"with N from 1 to {MAX_WITHIN_HOURS}",
        field="schedule",
    )


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
    campaigns.c.track_opens,
    campaigns.c.track_clicks,
    campaigns.c.schedule,
    campaigns.c.status,
    campaigns.c.sent_count,
    campaigns.c.skipped_count,
    campaigns.c.failed_count,
    campaigns.c.created_at,
    campaigns.c.sent_at,
)


# The API's `tracking` object and the columns it is kept in.
TRACKING_COLUMNS = {"opens": "track_opens", "clicks": "track_clicks"}


def tracking_columns(tracking: Mapping[str, Any] | None) -> dict[str, bool]:
    """`{"opens": bool, "clicks": bool}` (either may be left out) as column values."""
    if tracking is None:
        return {}
    unknown = sorted(set(tracking) - set(TRACKING_COLUMNS))
    if unknown:
        raise Invalid(f"tracking: unknown keys {unknown}; use opens, clicks", field="tracking")
    out = {}
    for key, value in tracking.items():
        if not isinstance(value, bool):
            raise Invalid(f"tracking.{key} must be true or false", field="tracking")
        out[TRACKING_COLUMNS[key]] = value
    return out


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    """A campaign as the API shows it: its switches as one `tracking` object."""
    out = dict(row)
    out["tracking"] = {key: bool(out.pop(col)) for key, col in TRACKING_COLUMNS.items()}
    return out


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
    tracking: Mapping[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if not name.strip():
        raise Invalid("name must not be empty", field="name")
    if not subject.strip():
        raise Invalid("subject must not be empty", field="subject")
    if pixel_placement not in PIXEL_PLACEMENTS:
        raise Invalid(f"pixel_placement must be one of {PIXEL_PLACEMENTS}", field="pixel_placement")
    if pixel_format not in PIXEL_FORMATS:
        raise Invalid(f"pixel_format must be one of {PIXEL_FORMATS}", field="pixel_format")
    switches = {"track_opens": True, "track_clicks": True} | tracking_columns(tracking)
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
            **switches,
            schedule=check_schedule(schedule),
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
    return _shown(row)


async def list_campaigns(conn: AsyncConnection, company_id: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*CAMPAIGN_FIELDS)
        .where(campaigns.c.company_id == company_id)
        .order_by(campaigns.c.id.desc())
    )
    return [_shown(r) for r in rows.mappings()]


# What a draft may change (PATCH /api/v1/campaigns/{id}); a campaign that left the draft
# state is what was sent, and stays so.
EDITABLE = (
    "name",
    "subject",
    "html",
    "text",
    "list_id",
    "utm",
    "tags",
    "pixel_placement",
    "pixel_format",
    "forward_link",
    "tracking",
    "schedule",
)


async def update_campaign(
    conn: AsyncConnection, company_id: int, campaign_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change a draft's fields; NotFound for another company's, Conflict once it is no
    longer a draft (queued, sending or sent). Validated as `create_campaign` validates."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise Invalid(f"cannot change {unknown}; a draft's fields are {list(EDITABLE)}")
    values = dict(changes)
    for name in ("name", "subject"):
        if name in values and not (values[name] or "").strip():
            raise Invalid(f"{name} must not be empty", field=name)
    if "name" in values:
        values["name"] = values["name"].strip()
    if "html" in values and values["html"] is None:
        raise Invalid("html must not be null", field="html")
    if "pixel_placement" in values and values["pixel_placement"] not in PIXEL_PLACEMENTS:
        raise Invalid(f"pixel_placement must be one of {PIXEL_PLACEMENTS}", field="pixel_placement")
    if "pixel_format" in values and values["pixel_format"] not in PIXEL_FORMATS:
        raise Invalid(f"pixel_format must be one of {PIXEL_FORMATS}", field="pixel_format")
    if "utm" in values:
        values["utm"] = check_utm(values["utm"])
    if "tags" in values:
        values["tags"] = values["tags"] or []
    if "forward_link" in values:
        values["forward_link"] = bool(values["forward_link"])
    if "tracking" in values:
        values |= tracking_columns(values.pop("tracking"))
    if "schedule" in values:
        values["schedule"] = check_schedule(values["schedule"])
    if values.get("list_id") is not None:
        try:
            await get_list(conn, company_id, values["list_id"])
        except NotFound as e:
            e.field = "list_id"
            raise
    elif "list_id" in values:
        raise Invalid("list_id must not be null", field="list_id")
    status = (await get_campaign(conn, company_id, campaign_id))["status"]
    if status == "draft" and values:
        # The state is checked in the UPDATE itself: a send queued meanwhile wins.
        result = await conn.execute(
            update(campaigns)
            .where(
                campaigns.c.id == campaign_id,
                campaigns.c.company_id == company_id,
                campaigns.c.status == "draft",
            )
            .values(values)
        )
        if result.rowcount != 1:
            status = (await get_campaign(conn, company_id, campaign_id))["status"]
    if status != "draft":
        raise Conflict(f"campaign {campaign_id} is {status}; only a draft can be changed")
    return await get_campaign(conn, company_id, campaign_id)
