"""Dashboard pages for lists: create and rename them, see a list's members (with their
opens and clicks for the roles that see tracking data) and remove one.

The same crm functions as `/api/v1/lists` (create, rename, members, remove); members
are read as `GET /api/v1/leads?list_id=` reads them, a keyset page at a time.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.analytics.engagement import lead_engagement
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.search import LeadQuery, search_leads
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import page_user, services
from mailbeacon.web.leads import PAGE_SIZE, csrf_ok, render_missing, tracking
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)


async def _lists_page(
    request: Request,
    who: Principal,
    session: sessions.Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with services(request).db.connect() as conn:
        lists = [jsonable(r) for r in await crm_lists.all_lists(conn, who)]
    page = render(
        request,
        "lists.html",
        who,
        session,
        lists=lists,
        errors=errors or {},
        form=form or {},
        notice=request.query_params.get("notice", "")[:300],
    )
    page.status_code = status_code
    return page


@router.get("/lists", response_class=HTMLResponse)
async def lists_page(request: Request) -> Response:
    who, session = await page_user(request)
    return await _lists_page(request, who, session)


@router.post("/lists", response_class=HTMLResponse)
async def create_list(request: Request, csrf: str = Form(""), name: str = Form("")) -> Response:
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        if len(name) > 200:
            raise CrmError("A list name has at most 200 characters.", field="name")
        async with services(request).db.begin() as conn:
            made = await crm_lists.create_list(conn, who, name)
    except CrmError as e:
        errors = {"name": e.message}
        return await _lists_page(
            request, who, session, errors=errors, form={"name": name}, status_code=422
        )
    notice = urlencode({"notice": f"Created the list {made['name']}."})
    return RedirectResponse(f"/lists?{notice}", status_code=303)


@router.post("/lists/{list_id}/rename", response_class=HTMLResponse)
async def rename_list(
    request: Request, list_id: int, csrf: str = Form(""), name: str = Form("")
) -> Response:
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        if len(name) > 200:
            raise CrmError("A list name has at most 200 characters.", field="name")
        async with services(request).db.begin() as conn:
            await crm_lists.rename_list(conn, who, list_id, name)
    except CrmError as e:
        if e.status == 404:
            return render_missing(request, who, session)
        errors = {f"rename-{list_id}": e.message}
        return await _lists_page(request, who, session, errors=errors, status_code=422)
    return RedirectResponse(f"/lists?{urlencode({'notice': 'Renamed.'})}", status_code=303)


@router.get("/lists/{list_id}", response_class=HTMLResponse)
async def list_page(request: Request, list_id: int, cursor: str = "") -> Response:
    who, session = await page_user(request)
    can_track = tracking(who)
    query = LeadQuery(list_id=list_id, sort="email", limit=PAGE_SIZE, cursor=cursor[:2000] or None)
    error = ""
    members: list[dict[str, Any]] = []
    after: str | None = None
    try:
        async with services(request).db.connect() as conn:
            item = jsonable(await crm_lists.get_list(conn, who.company_id, list_id))
            try:
                rows, after = await search_leads(conn, who, query, tracking=can_track)
            except CrmError as e:  # a cursor of another sort or a hand-made one
                rows, error = [], e.message
            for row in rows:
                member = jsonable(row)
                if can_track:
                    e = await lead_engagement(conn, who.company_id, row["id"])
                    member["opens"], member["clicks"] = e["opens"], e["clicks"]
                members.append(member)
    except CrmError:
        return render_missing(request, who, session)
    next_url = f"/lists/{list_id}?{urlencode({'cursor': after})}" if after else None
    return render(
        request,
        "list.html",
        who,
        session,
        item=item,
        members=members,
        tracking=can_track,
        next_url=next_url,
        first_url=f"/lists/{list_id}" if cursor else None,
        error=error,
        notice=request.query_params.get("notice", "")[:300],
    )


@router.post("/lists/{list_id}/remove/{lead_id}")
async def remove_member(
    request: Request, list_id: int, lead_id: int, csrf: str = Form("")
) -> Response:
    """`DELETE /api/v1/lists/{id}/leads/{lead_id}`, from a form."""
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        async with services(request).db.begin() as conn:
            await crm_lists.remove_member(conn, who, list_id, lead_id)
    except CrmError:
        return render_missing(request, who, session)
    notice = urlencode({"notice": "Removed from the list."})
    return RedirectResponse(f"/lists/{list_id}?{notice}", status_code=303)
