"""The company's own settings: tracking and privacy, and its plan's limits with usage.

One service for `GET/PATCH /api/v1/company` and the /settings page. Reading is for the
roles that see tracking data; changing is for administrators and company managers
(`Permission.MANAGE_COMPANY`). What the settings do is in store.retention (how long
hits, addresses and user agents are kept) and edge.privacy (anonymising at capture).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.errors import Forbidden, Invalid, NotFound
from mailbeacon.crm.limits import company_limits
from mailbeacon.crm.users import Principal
from mailbeacon.store.schema import companies, plans

# Ten years: more is "forever", which 0 already says.
MAX_DAYS = 3650
DAYS_FIELDS = ("hit_retention_days", "address_retention_days")
TRACKING_FIELDS = ("anonymize_ip", *DAYS_FIELDS)


@dataclass(frozen=True)
class Tracking:
    anonymize_ip: bool
    hit_retention_days: int  # raw hits are deleted after this many days; 0: kept
    address_retention_days: int  # addresses and user agents blanked after; 0: kept


def _require(who: Principal, permission: Permission) -> None:
    if not allowed(who.role, who.plan, permission):
        action = "see" if permission is Permission.VIEW_TRACKING else "change"
        raise Forbidden(
            f"the {who.role} role cannot {action} the company's settings on the {who.plan} plan"
        )


def check_tracking(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes as stored, or `Invalid` naming the first field at fault."""
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        field = f"tracking.{name}"
        if name not in TRACKING_FIELDS:
            known = ", ".join(TRACKING_FIELDS)
            raise Invalid(f"{field} is not a setting; use {known}", field=field)
        if name == "anonymize_ip":
            if not isinstance(value, bool):
                raise Invalid(f"{field} must be true or false", field=field)
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
            raise Invalid(
                f"{field} must be a whole number of days from 0 (keep forever) to {MAX_DAYS}",
                field=field,
            )
        clean[name] = value
    return clean


async def company_settings(conn: AsyncConnection, who: Principal) -> dict[str, Any]:
    """`{"id", "name", "plan", "plan_label", "tracking", "limits"}` of the caller's company;
    `limits` holds the plan's `max_users` / `max_leads` (null: unlimited) and the
    `users` (seats taken) and `leads` (not erased) in use, as `crm.limits` counts them."""
    _require(who, Permission.VIEW_TRACKING)
    row = (
        await conn.execute(
            select(companies, plans.c.label, plans.c.max_users, plans.c.max_leads)
            .join(plans, plans.c.name == companies.c.plan)
            .where(companies.c.id == who.company_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"company {who.company_id} does not exist")
    tracking = Tracking(
        anonymize_ip=bool(row.anonymize_ip),
        hit_retention_days=int(row.hit_retention_days or 0),
        address_retention_days=int(row.address_retention_days or 0),
    )
    return {
        "id": row.id,
        "name": row.name,
        "plan": row.plan,
        "plan_label": row.label,
        "tracking": asdict(tracking),
        # One count of seats and leads: the one the limits are enforced with.
        "limits": {
            key: value
            for key, value in (await company_limits(conn, who.company_id)).as_dict().items()
            if key != "plan"
        },
    }


async def change_tracking(
    conn: AsyncConnection, who: Principal, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change any of the tracking settings; the company's settings as they now are."""
    _require(who, Permission.MANAGE_COMPANY)
    clean = check_tracking(changes)
    if clean:
        await conn.execute(
            update(companies).where(companies.c.id == who.company_id).values(**clean)
        )
    return await company_settings(conn, who)
