"""Dashboard pages for leads: search, filter, sort and keyset pages; add one; add the
selected to a list; export the current view as CSV.

Every action calls the crm function its API route calls (`crm.search.search_leads` for
`GET /api/v1/leads`, `crm.leads.create_lead` for `POST`, `crm.lists.add_leads`), and the
CSV is the API's own streaming answer, so a page and a script never disagree. Score and
engagement are tracking data: the sales roles get no column, filter or sort by them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mailbeacon.analytics.engagement import lead_engagement
from mailbeacon.analytics.events import lead_activity
from mailbeacon.api.lead_admin import export_csv, export_response
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.erase import erase_lead
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.export import export_lead
from mailbeacon.crm.search import ENGAGEMENTS, LeadQuery, search_leads
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import page_user, services
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
SORTS = (
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("email", "Email A–Z"),
    ("-email", "Email Z–A"),
    ("-score", "Highest score"),
    ("score", "Lowest score"),
)


def tracking(who: Principal) -> bool:
    return allowed(who.role, who.plan, Permission.VIEW_TRACKING)


def csrf_ok(request: Request, session: sessions.Session, token: str) -> bool:
    return sessions.csrf_ok(services(request).settings.secret_keys, session, token)


def _int(text: str, field: str, errors: dict[str, str]) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[field] = "Enter a whole number."
        return None


def parse_view(params: dict[str, str], can_track: bool) -> tuple[LeadQuery, dict[str, str]]:
    """The search the URL asks for, and a message per field it got wrong. A sales role's
    URL naming tracking filters is read without them (they have no such controls)."""
    errors: dict[str, str] = {}
    list_id = _int(params.get("list_id", ""), "list_id", errors)
    min_score = _int(params.get("min_score", ""), "min_score", errors) if can_track else None
    engagement = params.get("engagement", "").strip() or None
    if engagement is not None and (not can_track or engagement not in ENGAGEMENTS):
        if can_track:
            errors["engagement"] = "Choose one of the listed kinds."
        engagement = None
    sort = params.get("sort", "").strip() or "-created_at"
    if sort not in dict(SORTS) or (not can_track and sort.removeprefix("-") == "score"):
        sort = "-created_at"
    query = LeadQuery(
        q=params.get("q", "").strip()[:320] or None,
        list_id=list_id,
        engagement=engagement,
        min_score=min_score,
        sort=sort,
        limit=PAGE_SIZE,
        cursor=params.get("cursor", "").strip()[:2000] or None,
    )
    return query, errors


def view_params(query: LeadQuery) -> dict[str, str]:
    """The view's filters as URL parameters: what was applied, not what was asked."""
    view = {
        "q": query.q,
        "list_id": query.list_id,
        "engagement": query.engagement,
        "min_score": query.min_score,
        "sort": query.sort if query.sort != "-created_at" else None,
    }
    return {k: str(v) for k, v in view.items() if v is not None}


async def _leads_page(
    request: Request,
    who: Principal,
    session: sessions.Session,
    *,
    add_form: dict[str, str] | None = None,
    add_errors: dict[str, str] | None = None,
    list_error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    params = dict(request.query_params)
    can_track = tracking(who)
    query, errors = parse_view(params, can_track)
    rows: list[dict[str, Any]] = []
    after: str | None = None
    async with services(request).db.connect() as conn:
        lists = [jsonable(r) for r in await crm_lists.all_lists(conn, who)]
        try:
            rows, after = await search_leads(conn, who, query, tracking=can_track)
        except CrmError as e:
            errors[e.field or "q"] = e.message
    view = view_params(query)
    next_url = "/leads?" + urlencode({**view, "cursor": after}) if after else None
    page = render(
        request,
        "leads.html",
        who,
        session,
        leads=[jsonable(r) for r in rows],
        lists=lists,
        view=view,
        errors=errors,
        tracking=can_track,
        engagements=ENGAGEMENTS,
        sorts=[s for s in SORTS if can_track or "score" not in s[0]],
        next_url=next_url,
        first_url=("/leads?" + urlencode(view)) if query.cursor else None,
        back_url="/leads" + ("?" + urlencode(view) if view else ""),
        export_url="/leads/export.csv" + ("?" + urlencode(view) if view else ""),
        notice=params.get("notice", "")[:300],
        add_form=add_form or {},
        add_errors=add_errors or {},
        list_error=list_error,
    )
    page.status_code = status_code
    return page


@router.get("/leads", response_class=HTMLResponse)
async def leads_page(request: Request) -> Response:
    who, session = await page_user(request)
    return await _leads_page(request, who, session)


@router.get("/leads/export.csv")
async def leads_csv(request: Request) -> Response:
    """The current view, every page of it, as the API's `format=csv` answers it."""
    who, _ = await page_user(request)
    query, errors = parse_view(dict(request.query_params), tracking(who))
    if errors:
        field, message = next(iter(errors.items()))
        return Response(f"{field}: {message}", status_code=422, media_type="text/plain")
    try:
        return await export_csv(services(request), who, query, tracking(who))
    except CrmError as e:
        return Response(e.message, status_code=e.status, media_type="text/plain")


@router.post("/leads", response_class=HTMLResponse)
async def add_lead(
    request: Request,
    csrf: str = Form(""),
    email: str = Form(""),
    first_name: str = Form(""),
    last_name: str = Form(""),
    timezone: str = Form(""),
) -> Response:
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    form = {"email": email, "first_name": first_name, "last_name": last_name, "timezone": timezone}
    try:
        async with services(request).db.begin() as conn:
            lead = await crm_leads.create_lead(
                conn,
                who,
                email=email,
                first_name=first_name or None,
                last_name=last_name or None,
                timezone=timezone.strip() or None,
            )
    except CrmError as e:
        errors = {e.field or "email": e.message}
        return await _leads_page(
            request, who, session, add_form=form, add_errors=errors, status_code=e.status
        )
    notice = urlencode({"notice": f"Added {lead['email']}."})
    return RedirectResponse(f"/leads/{lead['id']}?{notice}", status_code=303)


@router.post("/leads/add-to-list", response_class=HTMLResponse)
async def add_to_list(request: Request) -> Response:
    who, session = await page_user(request)
    form = await request.form()
    if not csrf_ok(request, session, str(form.get("csrf", ""))):
        return Response("CSRF token missing or wrong", status_code=403)
    back = str(form.get("back", ""))
    back = back if back.startswith("/leads") and not back.startswith("//") else "/leads"
    ids = [int(v) for v in form.getlist("lead_ids") if str(v).isdigit() and len(str(v)) < 10]
    list_id = str(form.get("list_id", ""))
    if not ids or not list_id.isdigit() or len(list_id) > 9:
        message = "Select at least one lead." if not ids else "Choose a list."
        return await _leads_page(request, who, session, list_error=message, status_code=422)
    try:
        async with services(request).db.begin() as conn:
            added = await crm_lists.add_leads(conn, who, int(list_id), ids)
            name = (await crm_lists.get_list(conn, who.company_id, int(list_id)))["name"]
    except CrmError as e:
        return await _leads_page(request, who, session, list_error=e.message, status_code=e.status)
    text = f"Added {added['added']} to {name}"
    if added["already_members"]:
        text += f" ({added['already_members']} already there)"
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{urlencode({'notice': text + '.'})}", status_code=303)


# -- one lead: its page (route in web.pages), edit, delete ----------------------------


async def lead_lists(conn: Any, who: Principal, email: str) -> list[dict[str, Any]]:
    """The lists the lead is on, asked as the API asks (`?list_id=&email=`)."""
    found = []
    for item in await crm_lists.all_lists(conn, who):
        query = LeadQuery(email=email, list_id=item["id"], limit=1)
        rows, _ = await search_leads(conn, who, query, tracking=False)
        if rows:
            found.append(jsonable(item))
    return found


async def lead_view(
    request: Request,
    lead_id: int,
    *,
    edit_form: dict[str, str] | None = None,
    edit_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The lead page: fields, lists, edit and delete for everyone who manages leads;
    score, engagement, campaigns and the timeline only for the tracking roles."""
    who, session = await page_user(request)
    can_track = tracking(who)
    engagement: Any = None
    timeline: list[Any] = []
    try:
        async with services(request).db.connect() as conn:
            lead = jsonable(await crm_leads.get_lead(conn, who, lead_id))
            lists = await lead_lists(conn, who, lead["email"])
            if can_track:
                engagement = await lead_engagement(conn, who.company_id, lead_id)
                timeline = await lead_activity(conn, who.company_id, lead_id, limit=500)
    except CrmError:
        return render_missing(request, who, session)
    if not can_track:
        lead.pop("score", None)
    form = edit_form or {
        "email": lead["email"],
        "first_name": lead["first_name"] or "",
        "last_name": lead["last_name"] or "",
        "timezone": lead["timezone"] or "",
    }
    page = render(
        request,
        "lead.html",
        who,
        session,
        lead=lead,
        e=engagement,
        timeline=timeline,
        tracking=can_track,
        lists=lists,
        custom=sorted((lead.get("fields") or {}).items()),
        form=form,
        edit_errors=edit_errors or {},
        notice=request.query_params.get("notice", "")[:300],
    )
    page.status_code = status_code
    return page


def render_missing(request: Request, who: Principal, session: sessions.Session) -> HTMLResponse:
    page = render(request, "error.html", who, session, status=404, message="There is no such lead.")
    page.status_code = 404
    return page


@router.post("/leads/{lead_id}/edit", response_class=HTMLResponse)
async def edit_lead(request: Request, lead_id: int) -> Response:
    """PATCH semantics: the form's fields replace the lead's; a custom field left empty
    is removed; a new one is added when both its name and value are given."""
    who, session = await page_user(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    if not csrf_ok(request, session, form.get("csrf", "")):
        return Response("CSRF token missing or wrong", status_code=403)
    changes: dict[str, Any] = {
        name: form.get(name, "").strip() for name in ("email", "first_name", "last_name")
    }
    changes["timezone"] = form.get("timezone", "").strip() or None
    fields: dict[str, str | None] = {
        key.removeprefix("field:"): (value.strip() or None)
        for key, value in form.items()
        if key.startswith("field:")
    }
    new_name, new_value = form.get("new_field", "").strip(), form.get("new_value", "").strip()
    if new_name and new_value:
        fields[new_name] = new_value
    if fields:
        changes["fields"] = fields
    try:
        async with services(request).db.begin() as conn:
            await crm_leads.update_lead(conn, who, lead_id, changes)
    except CrmError as e:
        if e.status == 404:
            return render_missing(request, who, session)
        field = e.field if e.field in ("email", "first_name", "last_name", "timezone") else "fields"
        return await lead_view(
            request, lead_id, edit_form=form, edit_errors={field: e.message}, status_code=e.status
        )
    notice = urlencode({"notice": "Saved."})
    return RedirectResponse(f"/leads/{lead_id}?{notice}", status_code=303)


@router.post("/leads/{lead_id}/tracking", response_class=HTMLResponse)
async def set_tracking(
    request: Request, lead_id: int, csrf: str = Form(""), tracking: str = Form("")
) -> Response:
    """Stop or resume tracking the lead (`PATCH /api/v1/leads/{id}` with `tracking`)."""
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    if tracking not in ("on", "off"):
        return Response("tracking: on or off", status_code=422)
    try:
        async with services(request).db.begin() as conn:
            await crm_leads.update_lead(conn, who, lead_id, {"tracking": tracking == "on"})
    except CrmError:
        return render_missing(request, who, session)
    said = "Tracking is on." if tracking == "on" else "This lead is no longer tracked."
    return RedirectResponse(f"/leads/{lead_id}?{urlencode({'notice': said})}", status_code=303)


@router.get("/leads/{lead_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, lead_id: int) -> Response:
    who, session = await page_user(request)
    try:
        async with services(request).db.connect() as conn:
            lead = jsonable(await crm_leads.get_lead(conn, who, lead_id))
    except CrmError:
        return render_missing(request, who, session)
    return render(request, "lead_delete.html", who, session, lead=lead)


@router.post("/leads/{lead_id}/delete")
async def delete_lead(request: Request, lead_id: int, csrf: str = Form("")) -> Response:
    """Erase the lead and everything tracked about them (`DELETE /api/v1/leads/{id}`)."""
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        async with services(request).db.begin() as conn:
            lead = await crm_leads.get_lead(conn, who, lead_id)
            await erase_lead(conn, who, lead_id, via="web")
    except CrmError:
        return render_missing(request, who, session)
    notice = urlencode({"notice": f"Deleted {lead['email']} and everything tracked about them."})
    return RedirectResponse(f"/leads?{notice}", status_code=303)


@router.post("/leads/{lead_id}/export")
async def export_lead_file(request: Request, lead_id: int, csrf: str = Form("")) -> Response:
    """Everything held about the lead, downloaded as `GET /api/v1/leads/{id}/export`
    answers it. A POST with the CSRF token: each export is an audit entry, which no
    other site (and no link prefetcher) may add."""
    who, session = await page_user(request)
    if not csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    if not tracking(who):
        return Response("Exports hold tracking data, which your role cannot see.", status_code=403)
    try:
        async with services(request).db.begin() as conn:
            document = await export_lead(conn, who, lead_id, via="web")
    except CrmError:
        return render_missing(request, who, session)
    return export_response(document, lead_id)
