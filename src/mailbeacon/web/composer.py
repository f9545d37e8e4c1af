"""The campaign composer: write a draft, preview it as a lead, send a test, send it.

Every action goes through the functions the API's routes are (`api.campaigns`,
`api.campaign_leads`), so the page and the API can never disagree on what a campaign
may be; their `ApiError`s come back next to the field they name.

One form, four buttons (`action`): "Save draft" stores and comes back to the edit
page; "Preview" and "Send test" store first (what is previewed is what is saved),
then show their result on the edit page; "Send now" stores, then asks to confirm
with the number of recipients, and the confirmed send shows a live progress bar.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from mailbeacon.api import campaign_leads as api_leads
from mailbeacon.api import campaigns as api_campaigns
from mailbeacon.api.errors import ApiError
from mailbeacon.api.merge_fields import check_merge_fields
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.campaigns import UTM_KEYS
from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.crm.users import Principal
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import PageExit, services, templates, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
# The email's own document, framed by the composer: its inline styles and images load
# (the preview's pixel is signed by a throwaway key and records nothing), no scripts.
# A srcdoc frame would inherit the dashboard's strict CSP and drop the email's styles.
MAIL_CSP = (
    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *; "
    "frame-ancestors 'self'"
)
PREVIEW_LEADS = 100  # leads offered in the "Preview as" select
STARTER_HTML = (
    '<p>Hello {{first_name}},</p>\n<p>…</p>\n<p><a href="https://example.com/">Read more</a></p>'
)


async def _composer_user(request: Request) -> tuple[Principal, Any]:
    """The roles that see tracking data and may send (marketing, managers)."""
    who, session = await tracking_user(request)
    if not allowed(who.role, who.plan, Permission.SEND_EMAIL):
        raise PageExit(HTMLResponse("This role cannot send email.", status_code=403))
    return who, session


def _form_of(campaign: dict[str, Any] | None) -> dict[str, Any]:
    """The form's values from a stored campaign (or a new one's defaults)."""
    if campaign is None:
        return {
            "name": "",
            "subject": "",
            "list_id": "",
            "html": STARTER_HTML,
            "pixel_placement": "body",
            "pixel_format": "gif",
            "forward_link": False,
            "track_opens": True,
            "track_clicks": True,
            "utm": {},
            "tags": [],
            **_schedule_form(None),
        }
    tags = list(campaign.get("tags") or [])
    return {
        "name": campaign["name"],
        "subject": campaign["subject"],
        "list_id": campaign["list_id"] or "",
        "html": campaign["html"],
        "pixel_placement": campaign["pixel_placement"],
        "pixel_format": campaign["pixel_format"],
        "forward_link": bool(campaign["forward_link"]),
        # "Track opens" / "Track clicks": the API's `tracking` object.
        "track_opens": bool(campaign["tracking"]["opens"]),
        "track_clicks": bool(campaign["tracking"]["clicks"]),
        "utm": dict(campaign.get("utm") or {}),
        "tags": tags,
        **_schedule_form(campaign.get("schedule")),
    }


def _schedule_form(schedule: dict[str, Any] | None) -> dict[str, Any]:
    """The "Send at" choice: now, at a time (UTC, minutes), or each lead's best hour."""
    form = {"send_at": "now", "send_at_time": "", "within_hours": "24"}
    if schedule and schedule.get("at"):
        form |= {"send_at": "at", "send_at_time": str(schedule["at"])[:16]}
    elif schedule and schedule.get("best_hour"):
        form |= {"send_at": "best_hour", "within_hours": str(schedule.get("within_hours", 24))}
    return form


def _schedule_body(form: dict[str, Any]) -> dict[str, Any] | None:
    """The API's `schedule` from the form; what it cannot read goes on as typed, so the
    API's validation answers next to the field."""
    if form["send_at"] == "at":
        return {"at": form["send_at_time"].strip() or None}
    if form["send_at"] == "best_hour":
        hours = form["within_hours"].strip()
        return {"best_hour": True, "within_hours": int(hours) if hours.isdigit() else hours}
    return None


def describe_schedule(schedule: dict[str, Any] | None) -> str:
    """The schedule in words, for the confirmation and progress pages."""
    if schedule and schedule.get("at"):
        return f"at {str(schedule['at'])[:16].replace('T', ' ')} UTC"
    if schedule and schedule.get("best_hour"):
        return f"at each lead's best hour within {schedule.get('within_hours', 24)} hours"
    return "now"


def _form_from_post(data: Any, previous_tags: list[str]) -> dict[str, Any]:
    form: dict[str, Any] = {
        k: str(data.get(k, ""))
        for k in ("name", "subject", "list_id", "html", "pixel_placement", "pixel_format")
    }
    form["forward_link"] = data.get("forward_link") == "1"
    form["track_opens"] = data.get("track_opens") == "1"
    form["track_clicks"] = data.get("track_clicks") == "1"
    form["utm"] = {k: str(data.get(f"utm_{k}", "")).strip() for k in UTM_KEYS}
    form["tags"] = list(previous_tags)
    form["send_at"] = str(data.get("send_at", "now"))
    form["send_at_time"] = str(data.get("send_at_time", ""))
    form["within_hours"] = str(data.get("within_hours", "24"))
    return form


def _body(form: dict[str, Any]) -> dict[str, Any]:
    """The API's body from the form."""
    list_id = form["list_id"].strip()
    return {
        "name": form["name"],
        "subject": form["subject"],
        "html": form["html"],
        "list_id": int(list_id) if list_id.isdigit() else None,
        "utm": {k: v for k, v in form["utm"].items() if v} or None,
        "tags": form["tags"],
        "pixel_placement": form["pixel_placement"],
        "pixel_format": form["pixel_format"],
        "forward_link": form["forward_link"],
        "tracking": {"opens": form["track_opens"], "clicks": form["track_clicks"]},
        "schedule": _schedule_body(form),
    }


def _validation(e: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in e.errors():
        field = str(err["loc"][0]) if err["loc"] else "name"
        errors.setdefault(field, str(err["msg"]))
    return errors


def _next_to_control(form: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """A schedule error shows next to the control the chosen "Send at" uses."""
    if "schedule" not in errors:
        return errors
    errors = dict(errors)
    del errors["schedule"]
    if form["send_at"] == "at":
        errors["send_at_time"] = "Type the date and time to send at (UTC)."
    else:
        errors["within_hours"] = "Type a number of hours from 1 to 168."
    return errors


async def _save(
    request: Request, who: Principal, campaign_id: int | None, form: dict[str, Any]
) -> tuple[int | None, dict[str, str]]:
    """Create or change the draft through the API's functions; errors by field."""
    svc = services(request)
    body = _body(form)
    if body["list_id"] is None:
        return campaign_id, {"list_id": "Choose the list to send to."}
    try:
        if campaign_id is None:
            created = await api_campaigns.create_campaign(
                api_campaigns.CampaignIn.model_validate(body), who, svc
            )
            return int(created["id"]), {}
        patch = api_leads.CampaignPatch.model_validate(body)
        async with svc.db.connect() as conn:
            templates_ = {"subject": body["subject"], "html": body["html"]}
            await check_merge_fields(conn, who.company_id, templates_)
        await api_leads.update_campaign(campaign_id, patch, who, svc)
        return campaign_id, {}
    except ValidationError as e:
        return campaign_id, _validation(e)
    except ApiError as e:
        return campaign_id, {e.field or "name": e.message}
    except CrmError as e:
        return campaign_id, {e.field or "name": e.message}


async def _lists(request: Request, who: Principal) -> list[dict[str, Any]]:
    async with services(request).db.connect() as conn:
        return await crm_lists.all_lists(conn, who)


async def _preview_leads(request: Request, who: Principal, list_id: Any) -> list[dict[str, Any]]:
    if not str(list_id).isdigit():
        return []
    try:
        async with services(request).db.connect() as conn:
            members = await crm_lists.list_leads(conn, who, int(list_id))
    except NotFound:
        return []
    return members[:PREVIEW_LEADS]


async def _page(
    request: Request,
    who: Principal,
    session: Any,
    campaign_id: int | None,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    page = render(
        request,
        "compose.html",
        who,
        session,
        campaign_id=campaign_id,
        form=form,
        errors=errors or {},
        lists=await _lists(request, who),
        preview_leads=await _preview_leads(request, who, form["list_id"]),
        utm_keys=UTM_KEYS,
        **extra,
    )
    page.status_code = status
    return page


async def _draft(request: Request, who: Principal, campaign_id: int) -> dict[str, Any]:
    try:
        async with services(request).db.connect() as conn:
            campaign = await crm_campaigns.get_campaign(conn, who.company_id, campaign_id)
    except NotFound:
        raise PageExit(HTMLResponse("campaign not found", status_code=404)) from None
    return campaign


@router.get("/campaigns/new", response_class=HTMLResponse)
async def new_campaign(request: Request) -> Response:
    who, session = await _composer_user(request)
    return await _page(request, who, session, None, _form_of(None))


@router.get("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
async def edit_campaign(
    request: Request,
    campaign_id: int,
    saved: str = "",
    preview: str = "",
    lead: str = "",
    tested: str = "",
) -> Response:
    """The draft's form; `?preview=1&lead=N` shows it previewed as lead N (a GET: a
    preview stores nothing, so the saved form's answer survives a reload)."""
    who, session = await _composer_user(request)
    campaign = await _draft(request, who, campaign_id)
    if campaign["status"] != "draft":
        return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
    form = _form_of(campaign)
    if preview:
        return await _preview(request, who, session, campaign_id, form, lead)
    notice = "Draft saved." if saved else ""
    if tested:
        notice = f"Test sent to {tested}. It is counted nowhere."
    return await _page(request, who, session, campaign_id, form, notice=notice, test_email=tested)


@router.post("/campaigns/new", response_class=HTMLResponse)
async def post_new(request: Request) -> Response:
    return await _submit(request, None)


@router.post("/campaigns/{campaign_id}/edit", response_class=HTMLResponse)
async def post_edit(request: Request, campaign_id: int) -> Response:
    return await _submit(request, campaign_id)


def _csrf_ok(request: Request, session: Any, token: str) -> bool:
    return sessions.csrf_ok(services(request).settings.secret_keys, session, token)


async def _submit(request: Request, campaign_id: int | None) -> Response:
    who, session = await _composer_user(request)
    data = await request.form()
    if not _csrf_ok(request, session, str(data.get("csrf", ""))):
        return Response("CSRF token missing or wrong", status_code=403)
    previous: list[str] = []
    if campaign_id is not None:
        campaign = await _draft(request, who, campaign_id)
        if campaign["status"] != "draft":
            return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
        previous = list(campaign.get("tags") or [])
    form = _form_from_post(data, previous)
    action = str(data.get("action", "save"))
    saved_id, errors = await _save(request, who, campaign_id, form)
    errors = _next_to_control(form, errors)
    if errors:
        return await _page(request, who, session, saved_id, form, errors, status=422)
    assert saved_id is not None
    if action == "send":
        return RedirectResponse(f"/campaigns/{saved_id}/send", status_code=303)
    if action == "preview":  # saved: shown by a GET, so a reload does not post again
        lead = quote(str(data.get("preview_lead", "")))
        return RedirectResponse(
            f"/campaigns/{saved_id}/edit?preview=1&lead={lead}", status_code=303
        )
    if action == "test":
        return await _test(request, who, session, saved_id, form, str(data.get("test_email", "")))
    return RedirectResponse(f"/campaigns/{saved_id}/edit?saved=1", status_code=303)


async def _preview(
    request: Request,
    who: Principal,
    session: Any,
    campaign_id: int,
    form: dict[str, Any],
    lead: str,
) -> Response:
    svc = services(request)
    leads = await _preview_leads(request, who, form["list_id"])
    if not lead.isdigit():
        if not leads:
            errors = {"preview_lead": "The list has no leads to preview as."}
            return await _page(request, who, session, campaign_id, form, errors, status=422)
        lead = str(leads[0]["id"])
    try:
        shown = await api_leads.preview_campaign(
            campaign_id, api_leads.PreviewIn(lead_id=int(lead)), who, svc
        )
    except ApiError as e:
        field = "preview_lead" if e.field == "lead_id" else (e.field or "html")
        return await _page(request, who, session, campaign_id, form, {field: e.message}, 422)
    return await _page(
        request, who, session, campaign_id, form, preview=shown, preview_lead=int(lead)
    )


async def _test(
    request: Request,
    who: Principal,
    session: Any,
    campaign_id: int,
    form: dict[str, Any],
    email: str,
) -> Response:
    svc = services(request)
    try:
        body = api_leads.TestIn(email=email.strip())
    except ValidationError:
        errors = {"test_email": "Type the address to send the test to (name@example.com)."}
        return await _page(request, who, session, campaign_id, form, errors, 422, test_email=email)
    try:
        sent = await api_leads.send_test(campaign_id, body, who, svc)
    except ApiError as e:
        field = "test_email" if e.field in ("email", None) else e.field
        return await _page(
            request, who, session, campaign_id, form, {field: e.message}, 422, test_email=email
        )
    return RedirectResponse(
        f"/campaigns/{campaign_id}/edit?tested={quote(sent['email'])}", status_code=303
    )


async def _progress(request: Request, who: Principal, campaign_id: int) -> dict[str, Any]:
    try:
        return await api_leads.campaign_progress(campaign_id, who, services(request))
    except NotFound:
        raise PageExit(HTMLResponse("campaign not found", status_code=404)) from None


def _mail_document(html: str) -> HTMLResponse:
    headers = {"Content-Security-Policy": MAIL_CSP, "Referrer-Policy": "no-referrer"}
    return HTMLResponse(html, headers={**headers, "Cache-Control": "no-store"})


@router.get("/campaigns/{campaign_id}/preview/{lead_id}", response_class=HTMLResponse)
async def preview_document(request: Request, campaign_id: int, lead_id: int) -> Response:
    """The previewed email's HTML on its own, for the composer's preview frame."""
    who, _ = await _composer_user(request)
    try:
        shown = await api_leads.preview_campaign(
            campaign_id, api_leads.PreviewIn(lead_id=lead_id), who, services(request)
        )
    except (ApiError, ValidationError) as e:
        return HTMLResponse(str(e), status_code=404)
    return _mail_document(shown["html"])


@router.post("/campaigns/live-preview", response_class=HTMLResponse)
async def live_preview(request: Request) -> Response:
    """The HTML being typed, as its own document (the composer's script posts it into
    the live preview frame): nothing is stored, merge fields stay as typed."""
    _, session = await _composer_user(request)
    data = await request.form()
    if not _csrf_ok(request, session, str(data.get("csrf", ""))):
        return Response("CSRF token missing or wrong", status_code=403)
    return _mail_document(str(data.get("html", "")))


@router.get("/campaigns/{campaign_id}/send", response_class=HTMLResponse)
async def confirm_send(request: Request, campaign_id: int) -> Response:
    """The confirmation: "Send to 1,234 leads?" and a second button."""
    who, session = await _composer_user(request)
    campaign = await _draft(request, who, campaign_id)
    if campaign["status"] != "draft":
        return RedirectResponse(f"/campaigns/{campaign_id}/sending", status_code=303)
    progress = await _progress(request, who, campaign_id)
    when = describe_schedule(campaign.get("schedule"))
    return render(
        request, "send_confirm.html", who, session, campaign=campaign, progress=progress, when=when
    )


@router.post("/campaigns/{campaign_id}/send", response_class=HTMLResponse)
async def send_now(request: Request, campaign_id: int) -> Response:
    who, session = await _composer_user(request)
    data = await request.form()
    if not _csrf_ok(request, session, str(data.get("csrf", ""))):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        await api_campaigns.send_campaign(campaign_id, who, services(request), None)
    except ApiError as e:
        if e.status != 409:  # already queued or sent: its progress is what to show
            context = {"who": who, "csrf": "", "status": e.status, "message": e.message}
            return templates.TemplateResponse(request, "error.html", context, status_code=e.status)
    except NotFound:
        raise PageExit(HTMLResponse("campaign not found", status_code=404)) from None
    return RedirectResponse(f"/campaigns/{campaign_id}/sending", status_code=303)


@router.get("/campaigns/{campaign_id}/sending", response_class=HTMLResponse)
async def sending(request: Request, campaign_id: int) -> Response:
    who, session = await _composer_user(request)
    campaign = await _draft(request, who, campaign_id)
    progress = await _progress(request, who, campaign_id)
    when = describe_schedule(campaign.get("schedule"))
    return render(
        request, "sending.html", who, session, campaign=campaign, progress=progress, when=when
    )


@router.get("/campaigns/{campaign_id}/progress")
async def progress_json(request: Request, campaign_id: int) -> Response:
    """The API's progress answer, for the page's script (session, not API key)."""
    who, _ = await _composer_user(request)
    return JSONResponse(await _progress(request, who, campaign_id))
