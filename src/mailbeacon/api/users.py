"""/api/v1/users: administrators and company managers manage their company's users.

Inviting (`POST`) makes the user at once, holding a seat of the plan, with no password,
and mails them a link to `/invite/{token}` where they set one (`crm.invitations`).
Changing a role or deactivating (`PATCH`) follows `crm.team`'s rules; a deactivated
user's sessions and API keys answer 401 from their next request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.errors import ApiError
from mailbeacon.api.fields import PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.crm import team
from mailbeacon.crm.access import Permission, Role
from mailbeacon.crm.companies import get_company
from mailbeacon.crm.invitations import invite
from mailbeacon.crm.users import Principal
from mailbeacon.delivery import DeliveryError
from mailbeacon.delivery.invitations import invitation_mail, send_invitation
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/users", tags=["users"], responses=EVERY_ROUTE, dependencies=[DOCUMENT_KEY]
)
MANAGE = require(Permission.MANAGE_COMPANY)


class UserIn(BaseModel):
    email: str = Field(max_length=320, json_schema_extra={"format": "email"})
    role: Role
    name: str | None = Field(default=None, max_length=200)


class UserPatch(BaseModel):
    role: Role | None = None
    active: bool | None = None


@router.get("")
async def list_users(
    who: Principal = Depends(MANAGE), svc: Services = Depends(services)
) -> list[dict[str, Any]]:
    """The company's users: `{"id", "email", "name", "role", "status", "created_at"}`,
    `status` being `active`, `invited` (no password set yet) or `deactivated`."""
    async with svc.db.connect() as conn:
        return [jsonable(u) for u in await team.list_users(conn, who.company_id)]


@router.get("/{user_id}", responses=FOUND)
async def get_user(
    user_id: PathId, who: Principal = Depends(MANAGE), svc: Services = Depends(services)
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return jsonable(await team.get_user(conn, who.company_id, user_id))


async def invite_user(
    svc: Services, who: Principal, email: str, role: str, name: str | None = None
) -> dict[str, Any]:
    """Invite and mail the link; the user as the API shows it. The pages call this too.

    The invitation is committed before the mail goes (no transaction held open on the
    mail server); if the server refuses, the answer is a 502 saying so, and inviting
    the same address again sends a fresh link."""
    async with svc.db.begin() as conn:
        made = await invite(conn, who, email, role, name)
        company = await get_company(conn, who.company_id)
        user = jsonable(await team.get_user(conn, who.company_id, made.user_id))
    mail = invitation_mail(
        svc.settings,
        company_id=who.company_id,
        company=company["name"],
        inviter=who.email,
        email=made.email,
        link=f"{svc.settings.base_url}/invite/{made.token}",
    )
    try:
        await send_invitation(svc.settings, mail)
    except DeliveryError as e:
        raise ApiError(
            502,
            "delivery_failed",
            f"{made.email} is invited, but the invitation mail was not sent ({e}); "
            "invite them again to send a new link",
        ) from None
    return user


@router.post("", status_code=201, responses={**BODY, **errors(409, 502)})
async def post_user(
    body: UserIn, who: Principal = Depends(MANAGE), svc: Services = Depends(services)
) -> dict[str, Any]:
    """Invite a user by email with a role: they are mailed a link to set their password
    (valid 7 days, once). Inviting an address again before they accept resends it. Past
    the plan's user limit: 403 `plan_limit`."""
    return await invite_user(svc, who, body.email, body.role.value, body.name)


@router.patch("/{user_id}", responses={**BODY, **FOUND, **errors(409)})
async def patch_user(
    user_id: PathId,
    body: UserPatch,
    who: Principal = Depends(MANAGE),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change a user's `role`, or `active: false` to deactivate them (their sessions and
    API keys stop at once) and `true` to bring them back. Nobody deactivates themselves;
    the last administrator stays one (409); only an administrator makes or changes an
    administrator (403)."""
    async with svc.db.begin() as conn:
        user = await team.change_user(
            conn,
            who.company_id,
            user_id,
            actor=who,
            role=body.role.value if body.role else None,
            active=body.active,
        )
    return jsonable(user)
