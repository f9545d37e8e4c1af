"""/settings/keys: every signed-in user's own API keys (create: the key is shown once, on
the answer page, never in a URL; revoke). The same section sits on /settings/users for
administrators and company managers; its forms say which page to come back to.

Acts through the API's functions (`api.api_keys.new_key`, `crm.users`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.api.api_keys import new_key
from mailbeacon.crm import users as crm_users
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import page_user, services
from mailbeacon.web.leads import csrf_ok
from mailbeacon.web.pages import render
from mailbeacon.web.settings_users import PAGE as USERS_PAGE
from mailbeacon.web.settings_users import users_page_response

router = APIRouter(include_in_schema=False)
PAGE = "/settings/keys"


def _to_users(who: Principal, back: str) -> bool:
    return back == "users" and allowed(who.role, who.plan, Permission.MANAGE_COMPANY)


async def _page(
    request: Request,
    who: Principal,
    session: sessions.Session,
    back: str,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    made: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if _to_users(who, back):
        return await users_page_response(
            request, who, session, errors=errors, form=form, new_key=made, status_code=status_code
        )
    async with services(request).db.connect() as conn:
        keys = [jsonable(k) for k in await crm_users.list_api_keys(conn, who.user_id)]
    page = render(
        request,
        "settings_keys.html",
        who,
        session,
        keys=keys,
        new_key=made,
        errors=errors or {},
        form=form or {},
        back="keys",
        notice=request.query_params.get("notice", "")[:300],
    )
    page.status_code = status_code
    return page


@router.get(PAGE, response_class=HTMLResponse)
async def keys_page(request: Request) -> Response:
    who, session = await page_user(request)
    return await _page(request, who, session, "keys")


@router.post(PAGE, response_class=HTMLResponse)
async def create_key(
    request: Request, csrf: str = Form(""), name: str = Form(""), back: str = Form("keys")
) -> Response:
    """The new key is shown on this answer page only (a redirect would put it in a URL)."""
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        made = await new_key(services(request), who, name or None)
    except CrmError as e:
        errors, form = {"key_name": e.message}, {"key_name": name[:100]}
        return await _page(request, who, session, back, errors=errors, form=form, status_code=422)
    page = await _page(request, who, session, back, made=made)
    page.headers["Cache-Control"] = "no-store"
    return page


@router.post(PAGE + "/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_key(
    request: Request, key_id: int, csrf: str = Form(""), back: str = Form("keys")
) -> Response:
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        async with services(request).db.begin() as conn:
            await crm_users.revoke_own_api_key(conn, who.user_id, key_id)
    except CrmError as e:
        errors = {f"key-{key_id}": e.message}
        return await _page(request, who, session, back, errors=errors, status_code=404)
    notice = urlencode({"notice": "The API key is revoked: requests with it are refused now."})
    return RedirectResponse(
        f"{USERS_PAGE if _to_users(who, back) else PAGE}?{notice}", status_code=303
    )
