"""Leads: the people mail is sent to. Email is unique within a company.

Every query takes the caller's `Principal`: rows of another company are invisible (404,
never 403, so ids leak nothing), and the sales roles only see the leads they own.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import sees_only_own_leads
from mailbeacon.crm.errors import Conflict, Invalid, NotFound
from mailbeacon.crm.fields import check_fields
from mailbeacon.crm.limits import ERASED, check_lead_room
from mailbeacon.crm.users import Principal, normalize_email
from mailbeacon.store import now
from mailbeacon.store.schema import leads, users

LEAD_STATUSES = ("subscribed", "unsubscribed", "bounced")
# A name goes into the To: header of the lead's mail: no line breaks, no controls.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
LEAD_FIELDS = (
    leads.c.id,
    leads.c.email,
    leads.c.first_name,
    leads.c.last_name,
    leads.c.timezone,
    leads.c.owner_user_id,
    leads.c.score,
    leads.c.status,
    leads.c.referred_by_lead_id,
    leads.c.unsubscribed_at,
    leads.c.created_at,
    leads.c.fields,
    leads.c.tracking,
)


def check_timezone(tz: str | None) -> str | None:
    if tz is None or tz == "":
        return None
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"timezone {tz!r} is not an IANA time zone (e.g. Europe/Paris)", field="timezone"
        ) from None
    return tz


def check_name(value: str | None, field: str) -> str | None:
    """A first or last name as given, or Invalid naming `field` for a control character."""
    if value is not None and _CONTROLS.search(value):
        raise Invalid(
            f"{field} may not contain line breaks or other control characters", field=field
        )
    return value


def visible_leads(who: Principal, query: Select[Any]) -> Select[Any]:
    """Scope a query over `leads` to what this user may see."""
    query = query.where(leads.c.company_id == who.company_id, leads.c.status != ERASED)
    if sees_only_own_leads(who.role):
        query = query.where(leads.c.owner_user_id == who.user_id)
    return query


async def create_lead(
    conn: AsyncConnection,
    who: Principal,
    *,
    email: str,
    first_name: str | None = None,
    last_name: str | None = None,
    timezone: str | None = None,
    owner_user_id: int | None = None,
    referred_by_lead_id: int | None = None,
    fields: dict[str, str] | None = None,
    tracking: bool = True,
) -> dict[str, Any]:
    email = normalize_email(email)
    first_name = check_name(first_name, "first_name")
    last_name = check_name(last_name, "last_name")
    custom = check_fields(fields or {})
    timezone = check_timezone(timezone)
    if owner_user_id is None:
        owner_user_id = who.user_id
    else:
        owner = await conn.execute(
            select(users.c.id).where(
                users.c.id == owner_user_id, users.c.company_id == who.company_id
            )
        )
        if owner.scalar() is None:
            raise NotFound(f"user {owner_user_id} does not exist", field="owner_user_id")
    existing = await find_lead_by_email(conn, who.company_id, email)
    if existing is not None:
        raise await _duplicate(conn, who.company_id, email)
    await check_lead_room(conn, who.company_id)
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(leads)
                .values(
                    company_id=who.company_id,
                    email=email,
                    first_name=first_name,
                    last_name=last_name,
                    timezone=timezone,
                    owner_user_id=owner_user_id,
                    referred_by_lead_id=referred_by_lead_id,
                    score=0,
                    status="subscribed",
                    created_at=now(),
                    fields=custom,
                    tracking=bool(tracking),
                )
                .returning(leads.c.id)
            )
    except IntegrityError:
        raise await _duplicate(conn, who.company_id, email) from None
    return await get_lead(conn, who, int(result.scalar_one()))


async def _duplicate(conn: AsyncConnection, company_id: int, email: str) -> Conflict:
    """The 409 for an address the company already has, naming the lead that has it."""
    existing = await find_lead_by_email(conn, company_id, email)
    return Conflict(f"a lead with email {email} already exists: lead {existing}", field="email")


async def update_lead(
    conn: AsyncConnection, who: Principal, lead_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change any of email, first_name, last_name, timezone, custom `fields` (a key
    set to None is removed; other keys are kept) and `tracking` (False: their mail from
    now on carries no pixel and no tracked links)."""
    lead = await get_lead(conn, who, lead_id)
    values: dict[str, Any] = {}
    if "email" in changes:
        values["email"] = normalize_email(changes["email"] or "")
    for name in ("first_name", "last_name"):
        if name in changes:
            values[name] = changes[name] or None
    if "timezone" in changes:
        values["timezone"] = check_timezone(changes["timezone"])
    if changes.get("tracking") is not None:
        if not isinstance(changes["tracking"], bool):
            raise Invalid("tracking must be true or false", field="tracking")
        values["tracking"] = changes["tracking"]
    if changes.get("fields") is not None:
        merged = dict(lead["fields"] or {})
        for key, value in changes["fields"].items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        values["fields"] = check_fields(merged)
    if values:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    update(leads)
                    .where(leads.c.id == lead_id, leads.c.company_id == who.company_id)
                    .values(**values)
                )
        except IntegrityError:
            raise await _duplicate(conn, who.company_id, values["email"]) from None
    return await get_lead(conn, who, lead_id)


async def get_lead(conn: AsyncConnection, who: Principal, lead_id: int) -> dict[str, Any]:
    row = (
        (await conn.execute(visible_leads(who, select(*LEAD_FIELDS)).where(leads.c.id == lead_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"lead {lead_id} does not exist")
    return dict(row)


async def find_lead_by_email(conn: AsyncConnection, company_id: int, email: str) -> int | None:
    result = await conn.execute(
        select(leads.c.id).where(leads.c.company_id == company_id, leads.c.email == email.lower())
    )
    value = result.scalar()
    return int(value) if value is not None else None


async def set_lead_status(
    conn: AsyncConnection, company_id: int, lead_id: int, status: str
) -> bool:
    """Change a lead's status; True if it changed. Used by unsubscribes and bounces."""
    if status not in LEAD_STATUSES:
        raise Invalid(f"unknown status {status!r}", field="status")
    values: dict[str, Any] = {"status": status}
    if status == "unsubscribed":
        values["unsubscribed_at"] = now()
    result = await conn.execute(
        update(leads)
        .where(leads.c.id == lead_id, leads.c.company_id == company_id, leads.c.status != status)
        .values(**values)
    )
    return result.rowcount > 0


async def add_score(conn: AsyncConnection, company_id: int, lead_id: int, points: int) -> None:
    await conn.execute(
        update(leads)
        .where(leads.c.id == lead_id, leads.c.company_id == company_id)
        .values(score=leads.c.score + points)
    )


async def ensure_referred_lead(
    conn: AsyncConnection,
    company_id: int,
    email: str,
    name: str | None,
    referred_by_lead_id: int,
) -> int:
    """The lead for a forwarded-to friend: an existing lead keeps its history; a new one
    is owned by the referrer's owner and remembers who referred them."""
    referrer = (
        await conn.execute(
            select(leads.c.id, leads.c.owner_user_id).where(
                leads.c.id == referred_by_lead_id,
                leads.c.company_id == company_id,
                leads.c.status != ERASED,
            )
        )
    ).first()
    if referrer is None:  # erased: their old mail still answers, and records nothing
        raise NotFound(f"lead {referred_by_lead_id} does not exist")
    owner = referrer.owner_user_id
    email = normalize_email(email)
    existing = await find_lead_by_email(conn, company_id, email)
    if existing is not None:
        return existing
    owner = (
        await conn.execute(
            select(leads.c.owner_user_id).where(
                leads.c.id == referred_by_lead_id, leads.c.company_id == company_id
            )
        )
    ).scalar()
    first, _, last = _CONTROLS.sub(" ", name or "").strip().partition(" ")
    await check_lead_room(conn, company_id)
    result = await conn.execute(
        insert(leads)
        .values(
            company_id=company_id,
            email=email,
            first_name=first or None,
            last_name=last or None,
            owner_user_id=owner,
            referred_by_lead_id=referred_by_lead_id,
            score=0,
            status="subscribed",
            created_at=now(),
        )
        .returning(leads.c.id)
    )
    return int(result.scalar_one())
