"""/settings: the company's own settings, for administrators and company managers.

The company and its plan's limits with what is used of them, and the tracking and
privacy form (anonymise at capture, how long raw hits and readers' addresses are kept),
saved through `crm.company_settings`, the service `PATCH /api/v1/company` uses. The
users and event webhooks sections link to their own pages (/settings/users,
/settings/webhooks). Every other role gets an HTML 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.crm import company_settings
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.company_settings import MAX_DAYS
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.users import Principal
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import PageExit, page_user, services
from mailbeacon.web.leads import csrf_ok
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
DAYS_FIELDS = company_settings.DAYS_FIELDS


async def settings_user(request: Request) -> tuple[Principal, sessions.Session]:
    """A signed-in administrator or company manager; an HTML 403 for everyone else."""
    who, session = await page_user(request)
    if not allowed(who.role, who.plan, Permission.MANAGE_COMPANY):
        page = render(
            request,
            "error.html",
            who,
            session,
            status=403,
            message=f"The {who.role.replace('_', ' ')} role cannot open the company's "
            "settings. Ask an administrator or a company manager.",
        )
        page.status_code = 403
        raise PageExit(page)
    return who, session


async def _page(
    request: Request,
    who: Principal,
    session: sessions.Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with services(request).db.connect() as conn:
        company = await company_settings.company_settings(conn, who)
    page = render(
        request,
        "settings.html",
        who,
        session,
        company=company,
        form=form or company["tracking"],
        errors=errors or {},
        max_days=MAX_DAYS,
        server_days=services(request).settings.hit_retention_days,
        refresh_seconds=services(request).settings.privacy_refresh_seconds,
        notice=request.query_params.get("notice", "")[:300],
    )
    page.status_code = status_code
    return page


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request) -> Response:
    who, session = await settings_user(request)
    return await _page(request, who, session)


def _days(form: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The form's day counts as numbers; a word next to each field that is not one."""
    changes: dict[str, Any] = {}
    for name in DAYS_FIELDS:
        text = str(form[name]).strip()
        if not (text.isascii() and text.isdigit() and int(text) <= MAX_DAYS):
            errors[name] = f"Enter a whole number of days from 0 (keep forever) to {MAX_DAYS}."
        else:
            changes[name] = int(text)
    return changes


@router.post("/settings/tracking", response_class=HTMLResponse)
async def save_tracking(
    request: Request,
    csrf: str = Form(""),
    anonymize_ip: str = Form(""),
    hit_retention_days: str = Form(""),
    address_retention_days: str = Form(""),
) -> Response:
    who, session = await settings_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    form: dict[str, Any] = {
        "anonymize_ip": bool(anonymize_ip),
        "hit_retention_days": hit_retention_days[:20],
        "address_retention_days": address_retention_days[:20],
    }
    errors: dict[str, str] = {}
    changes = {"anonymize_ip": form["anonymize_ip"], **_days(form, errors)}
    if not errors:
        try:
            async with services(request).db.begin() as conn:
                await company_settings.change_tracking(conn, who, changes)
        except CrmError as e:
            errors[(e.field or "").removeprefix("tracking.") or "form"] = e.message
    if errors:
        return await _page(request, who, session, errors=errors, form=form, status_code=422)
    notice = urlencode({"notice": "Saved the tracking and privacy settings."})
    return RedirectResponse(f"/settings?{notice}", status_code=303)
