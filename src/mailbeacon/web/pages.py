"""Dashboard pages: login and logout, campaigns, a campaign's report (live), a lead.

The campaign page renders the very dict the API's report returns (`campaign_report`),
so the headline numbers cannot drift from the API. Its live feed polls the rollups once
a second on the server and pushes a new report (server-sent events) when it changed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from mailbeacon.analytics.report import campaign_headlines, campaign_report
from mailbeacon.api import throttle
from mailbeacon.api.errors import html_error
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.users import authenticate_password, end_sessions, session_epoch
from mailbeacon.store import now
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import (
    PageExit,
    client_address,
    current_user,
    over_https,
    services,
    start_session,
    templates,
    tracking_user,
)
from mailbeacon.web.minutes import minute_series

router = APIRouter(include_in_schema=False)
LIVE_POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
# What the campaign page's headline shows, human numbers first.
HEADLINE = (
    ("human_opens_unique", "Human opens", "leads who opened: human, Gmail proxy or inferred"),
    ("open_rate", "Open rate", "human opens / sent"),
    ("clicks_unique", "Clickers", "leads with a human click"),
    ("click_rate", "Click rate", "clickers / sent"),
    ("click_to_open_rate", "Click-to-open", "clickers / human opens"),
    ("inferred_opens", "Inferred opens", "clicked, but no open was recorded"),
    ("forwards", "Forwards", "forward-to-a-friend sends and other readers"),
    ("unsubscribes", "Unsubscribes", "leads who unsubscribed from this campaign"),
)
# Set apart from the human numbers: (field, label, reasons field, what it means).
SET_APART = (
    (
        "machine_opens",
        "Machine opens",
        "machine_opens_by_reason",
        "Pixel loads by privacy proxies (Apple Mail), security scanners and bots, "
        "not by a person reading.",
    ),
    (
        "bot_clicks",
        "Bot clicks",
        "bot_clicks_by_reason",
        "Link visits by security scanners and link checkers, often before delivery.",
    ),
    (
        "opens_total",
        "All pixel loads (people and machines)",
        None,
        "Every time the tracking image was fetched, counting repeats and machines. "
        "Most email tools call this total opens; it overstates reading.",
    ),
    (
        "opens_unique",
        "Leads with any pixel load",
        None,
        "Leads whose copy fetched the image at least once, by a person or a machine. "
        "Most email tools call this unique opens; Apple Mail alone makes it high.",
    ),
)


def render(request: Request, name: str, who: Any, session: Any, **ctx: Any) -> HTMLResponse:
    keys = services(request).settings.secret_keys
    ctx |= {"who": who, "csrf": sessions.csrf_token(keys, session) if session else ""}
    return templates.TemplateResponse(request, name, ctx)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/", error: str = "") -> Response:
    token = request.cookies.get(sessions.LOGIN_CSRF_COOKIE) or secrets.token_hex(16)
    page = templates.TemplateResponse(
        request, "login.html", {"who": None, "csrf": token, "next": next, "error": error}
    )
    page.set_cookie(
        sessions.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=over_https(request)
    )
    return page


def _safe_next(target: str) -> str:
    # Only paths on this site: never `//evil.example` or an absolute URL.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
async def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/"),
) -> Response:
    cookie = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf):
        return templates.TemplateResponse(
            request,
            "error.html",
            {"who": None, "status": 403, "message": "The form expired; reload the login page."},
            status_code=403,
        )
    svc = services(request)
    attempt = throttle.Attempt(email, client_address(request))
    who, epoch = None, 0
    async with svc.db.connect() as conn:
        wait = await throttle.retry_after(conn, attempt, now())
        if wait is None:
            who = await authenticate_password(conn, email, password)
            epoch = await session_epoch(conn, who.user_id) if who else 0
    if wait is None:
        # A transaction of its own that writes first: on SQLite, a read transaction that
        # turned into a write while the hits writer commits would fail as "busy".
        async with svc.db.begin() as conn:
            if who is None:
                wait = await throttle.record_failure(conn, attempt, now())
            else:
                await throttle.record_success(conn, attempt)
    if wait is not None:
        return _too_many(request, wait)
    if who is None:
        return RedirectResponse("/login?error=1&next=" + _safe_next(next), status_code=303)
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, response, who.user_id, epoch)
    return response


def _too_many(request: Request, wait: int) -> Response:
    minutes = max(1, round(wait / 60))
    message = (
        "Too many failed logins for this account or from this address. "
        f"Try again in {wait} seconds" + (f" (about {minutes} min)." if wait >= 90 else ".")
    )
    return templates.TemplateResponse(
        request,
        "error.html",
        {"who": None, "status": 429, "message": message},
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


@router.post("/logout")
async def logout(request: Request, csrf: str = Form("")) -> Response:
    found = await current_user(request)
    svc = services(request)
    if found and not sessions.csrf_ok(svc.settings.secret_keys, found[1], csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    if found:
        # The cookie stays signed and unexpired; the new epoch is what ends it, here and
        # in every other browser the user signed in from.
        async with svc.db.begin() as conn:
            await end_sessions(conn, found[0].user_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.SESSION_COOKIE)
    return response


HOME_CAMPAIGNS = 10


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The latest campaigns with their human rates; the sales roles go to their leads."""
    found = await current_user(request)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    who, session = found
    if not allowed(who.role, who.plan, Permission.VIEW_TRACKING):
        return RedirectResponse("/leads", status_code=303)
    async with services(request).db.connect() as conn:
        rows = (await crm_campaigns.list_campaigns(conn, who.company_id))[:HOME_CAMPAIGNS]
        numbers = await campaign_headlines(conn, rows)
    return render(request, "home.html", who, session, campaigns=rows, numbers=numbers)


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(request: Request) -> Response:
    who, session = await tracking_user(request)
    async with services(request).db.connect() as conn:
        rows = await crm_campaigns.list_campaigns(conn, who.company_id)
        # The headline only: a full report per row would run an estimate for each.
        reports = await campaign_headlines(conn, rows)
    return render(request, "campaigns.html", who, session, campaigns=rows, reports=reports)


async def _report(request: Request, company_id: int, campaign_id: int) -> dict[str, Any]:
    try:
        async with services(request).db.connect() as conn:
            report = await campaign_report(conn, company_id, campaign_id)
            # Minutes old: the chart counts by minute (the rollups are hourly).
            report["over_time_minutes"] = await minute_series(conn, campaign_id, now())
            return jsonable(report)
    except NotFound:
        page = await html_error(request, 404, message="There is no such campaign.")
        raise PageExit(page) from None


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(request: Request, campaign_id: int) -> Response:
    who, session = await tracking_user(request)
    report = await _report(request, who.company_id, campaign_id)
    from mailbeacon.web import engaged  # the who-engaged lists; it imports `render` from here

    return render(
        request,
        "campaign.html",
        who,
        session,
        report=report,
        # "<" escaped so a campaign name cannot close the <script> it is embedded in.
        report_json=json.dumps(report).replace("<", "\\u003c"),
        headline=HEADLINE,
        set_apart=SET_APART,
        engaged=await engaged.sections(request, who, campaign_id),
    )


@router.get("/campaigns/{campaign_id}/live")
async def campaign_live(request: Request, campaign_id: int) -> Response:
    """Server-sent events: the report again whenever the rollups moved."""
    who, _ = await tracking_user(request)
    await _report(request, who.company_id, campaign_id)  # 404 before the stream opens

    async def stream() -> AsyncIterator[str]:
        last, beat = "", time.monotonic()
        while not await request.is_disconnected():
            data = json.dumps(await _report(request, who.company_id, campaign_id))
            if data != last:
                last, beat = data, time.monotonic()
                yield f"event: report\ndata: {data}\n\n"
            elif time.monotonic() - beat > HEARTBEAT_SECONDS:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(LIVE_POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
async def lead_page(request: Request, lead_id: int) -> Response:
    # Built in web.leads beside its edit and delete (which show it again with errors).
    from mailbeacon.web.leads import lead_view

    return await lead_view(request, lead_id)
