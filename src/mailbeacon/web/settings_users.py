"""/settings/users: administrators and company managers manage their company's users
(invite, change a role, deactivate after a confirmation, reactivate), with the plan's
user and lead limits at the top and their own API keys below (`web.settings_keys`).

The page acts through the API's own functions (`api.users.invite_user`, `crm.team`),
so the rules are the same in both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.api.errors import ApiError
from mailbeacon.api.users import invite_user
from mailbeacon.crm import team
from mailbeacon.crm import users as crm_users
from mailbeacon.crm.access import Permission, Role, allowed
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.limits import company_limits
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import PageExit, page_user, services
from mailbeacon.web.leads import csrf_ok
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
PAGE = "/settings/users"
ROLES = [r.value for r in Role]


async def manager(request: Request) -> tuple[Principal, sessions.Session]:
    """A signed-in administrator or company manager; an HTML 403 for everyone else."""
    who, session = await page_user(request)
    if not allowed(who.role, who.plan, Permission.MANAGE_COMPANY):
        message = (
            f"The {who.role.replace('_', ' ')} role cannot manage users. "
            "Ask an administrator or a company manager."
        )
        page = render(request, "error.html", who, session, status=403, message=message)
        page.status_code = 403
        raise PageExit(page)
    return who, session


async def users_page_response(
    request: Request,
    who: Principal,
    session: sessions.Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    new_key: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with services(request).db.connect() as conn:
        people = [jsonable(u) for u in await team.list_users(conn, who.company_id)]
        keys = [jsonable(k) for k in await crm_users.list_api_keys(conn, who.user_id)]
        limits = await company_limits(conn, who.company_id)
    page = render(
        request,
        "settings_users.html",
        who,
        session,
        people=people,
        keys=keys,
        limits=limits,
        roles=ROLES,
        errors=errors or {},
        form=form or {},
        new_key=new_key,
        back="users",
        notice=request.query_params.get("notice", "")[:300],
    )
    page.status_code = status_code
    return page


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"{PAGE}?{urlencode({'notice': notice})}", status_code=303)


def _refused() -> Response:
    return Response("CSRF token missing or wrong", status_code=403)


@router.get(PAGE, response_class=HTMLResponse)
async def users_page(request: Request) -> Response:
    who, session = await manager(request)
    return await users_page_response(request, who, session)


@router.post(f"{PAGE}/invite", response_class=HTMLResponse)
async def invite(
    request: Request, csrf: str = Form(""), email: str = Form(""), role: str = Form("")
) -> Response:
    who, session = await manager(request)
    if not csrf_ok(request, session, csrf):
        return _refused()
    form = {"email": email[:320], "role": role[:32]}
    try:
        if len(email) > 320:
            raise CrmError("An address has at most 320 characters.", field="email")
        made = await invite_user(services(request), who, email, team.check_role(role))
    except CrmError as e:
        field = e.field if e.field in ("email", "role") else "invite"
        status = 409 if e.status == 409 else 403 if e.status == 403 else 422
        errors = {field: e.message}
        return await users_page_response(
            request, who, session, errors=errors, form=form, status_code=status
        )
    except ApiError as e:  # the mail server refused: the user is invited all the same
        errors = {"invite": e.message}
        return await users_page_response(request, who, session, errors=errors, status_code=e.status)
    return _done(f"Invited {made['email']}: they have been mailed a link to set a password.")


async def _change(request: Request, user_id: int, csrf: str, **change: Any) -> Response:
    who, session = await manager(request)
    if not csrf_ok(request, session, csrf):
        return _refused()
    try:
        async with services(request).db.begin() as conn:
            user = await team.change_user(conn, who.company_id, user_id, actor=who, **change)
    except CrmError as e:
        if e.status == 404:
            page = render(request, "error.html", who, session, status=404, message=e.message)
            page.status_code = 404
            return page
        errors = {f"user-{user_id}": e.message}
        return await users_page_response(request, who, session, errors=errors, status_code=e.status)
    if "role" in change:
        return _done(f"{user['email']} is now {user['role'].replace('_', ' ')}.")
    if change.get("active"):
        return _done(f"{user['email']} is active again.")
    return _done(f"{user['email']} is deactivated: their sessions and API keys have ended.")


@router.post(PAGE + "/{user_id}/role", response_class=HTMLResponse)
async def change_role(
    request: Request, user_id: int, csrf: str = Form(""), role: str = Form("")
) -> Response:
    return await _change(request, user_id, csrf, role=role)


@router.get(PAGE + "/{user_id}/deactivate", response_class=HTMLResponse)
async def confirm_deactivate(request: Request, user_id: int) -> Response:
    """Asks first: deactivating ends the user's sessions and keys at once."""
    who, session = await manager(request)
    try:
        async with services(request).db.connect() as conn:
            user = jsonable(await team.get_user(conn, who.company_id, user_id))
    except CrmError as e:
        page = render(request, "error.html", who, session, status=404, message=e.message)
        page.status_code = 404
        return page
    return render(request, "settings_user_deactivate.html", who, session, user=user)


@router.post(PAGE + "/{user_id}/deactivate", response_class=HTMLResponse)
async def deactivate(request: Request, user_id: int, csrf: str = Form("")) -> Response:
    return await _change(request, user_id, csrf, active=False)


@router.post(PAGE + "/{user_id}/activate", response_class=HTMLResponse)
async def activate(request: Request, user_id: int, csrf: str = Form("")) -> Response:
    return await _change(request, user_id, csrf, active=True)
