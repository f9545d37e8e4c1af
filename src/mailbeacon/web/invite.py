"""/invite/{token}: an invited user sets their first password, then is signed in.

No session yet, so the form's CSRF check is the login page's double-submit cookie. A
link that was used, replaced by a newer invitation, voided by deactivation or is past
its 7 days answers a 404 page saying so (`crm.invitations`).
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.invitations import accept, open_invitation
from mailbeacon.crm.users import session_epoch
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import over_https, services, start_session, templates

router = APIRouter(include_in_schema=False)
MAX_TOKEN = 100


def _gone(request: Request) -> Response:
    message = (
        "This invitation link is not valid: it was used already, replaced by a newer "
        "invitation, or has expired. Ask your administrator to invite you again."
    )
    context = {"who": None, "status": 404, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=404)


def _form(
    request: Request, token: str, invited: object, csrf: str, error: str = "", status: int = 200
) -> Response:
    page = templates.TemplateResponse(
        request,
        "invite.html",
        {"who": None, "csrf": csrf, "token": token, "invited": invited, "error": error},
        status_code=status,
    )
    page.set_cookie(
        sessions.LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="lax", secure=over_https(request)
    )
    page.headers["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return page


@router.get("/invite/{token}", response_class=HTMLResponse)
async def invite_form(request: Request, token: str) -> Response:
    if len(token) > MAX_TOKEN:
        return _gone(request)
    try:
        async with services(request).db.connect() as conn:
            invited = await open_invitation(conn, token)
    except CrmError:
        return _gone(request)
    csrf = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or secrets.token_hex(16)
    return _form(request, token, invited, csrf)


@router.post("/invite/{token}", response_class=HTMLResponse)
async def set_first_password(
    request: Request,
    token: str,
    csrf: str = Form(""),
    password: str = Form(""),
    repeat: str = Form(""),
) -> Response:
    cookie = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf):
        return Response("The form expired; open the invitation link again.", status_code=403)
    if len(token) > MAX_TOKEN:
        return _gone(request)
    svc = services(request)
    try:
        async with svc.db.connect() as conn:
            invited = await open_invitation(conn, token)
    except CrmError:
        return _gone(request)
    if password != repeat:
        return _form(request, token, invited, cookie, "The two passwords differ.", 422)
    try:
        async with svc.db.begin() as conn:
            found = await accept(conn, token, password)
            epoch = await session_epoch(conn, found.user_id)
    except CrmError as e:
        if e.status == 404:
            return _gone(request)
        return _form(request, token, invited, cookie, e.message[:1].upper() + e.message[1:], 422)
    response = RedirectResponse("/", status_code=303)
    start_session(request, response, found.user_id, epoch)
    return response
