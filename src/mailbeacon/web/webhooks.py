"""/settings/webhooks: the company's event webhooks, for the tracking roles.

The list with each webhook's events, verdicts and state (pause/resume); a form to add one
("URL", "Secret", the event and verdict checkboxes, "Add webhook"); delete, which asks
first; and one webhook's delivery log. Everything goes through
`automation.event_webhooks`, the service the API uses, and the form is validated by
the API's own model, so an error names the same field, shown next to it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from mailbeacon.automation import event_webhooks as store
from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.store.render import jsonable
from mailbeacon.store.webhook_outbox import DEFAULT_VERDICTS
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import PageExit, services, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
EVENTS = (
    ("open", "Opens"),
    ("click", "Clicks"),
    ("forward", "Forwards"),
    ("unsubscribe", "Unsubscribes"),
    ("bounce", "Bounces"),
)
VERDICTS = (
    ("human", "A person"),
    ("proxy", "A mail provider's image proxy (Gmail)"),
    ("prefetch", "A privacy prefetch (Apple Mail)"),
    ("scanner", "A security scanner"),
    ("bot", "A bot"),
)
# The list's words for the verdicts a webhook accepts, and the log's for one event.
VERDICT_WORDS = {"human": "people", "proxy": "image proxies", "prefetch": "privacy prefetches",
                 "scanner": "scanners", "bot": "bots"}  # fmt: skip
ONE_EVENT = {"open": "Open", "click": "Click", "forward": "Forward",
             "unsubscribe": "Unsubscribe", "bounce": "Bounce"}  # fmt: skip
# Pydantic's words are for programs; these are for the person at the form.
SAYINGS = {
    ("secret", "string_too_short"): "The secret needs at least 8 characters.",
    ("url", "string_too_short"): "Enter the URL your receiver listens on.",
    ("url", "value_error"): "Enter a full URL that starts with http:// or https://.",
}
PAGE = "/settings/webhooks"


def _refuse_forgery(request: Request, session: Any, csrf: str) -> None:
    if not sessions.csrf_ok(services(request).settings.secret_keys, session, csrf):
        raise PageExit(Response("CSRF token missing or wrong", status_code=403))


async def _list_page(
    request: Request, who: Any, session: Any, form: dict[str, Any], errors: dict[str, str],
    status: int = 200,
) -> Response:  # fmt: skip
    async with services(request).db.connect() as conn:
        hooks = [jsonable(h) for h in await store.list_all(conn, who.company_id)]
    page = render(
        request, "webhooks.html", who, session, hooks=hooks, form=form, errors=errors,
        events=EVENTS, verdicts=VERDICTS, names=dict(EVENTS), verdict_words=VERDICT_WORDS,
    )  # fmt: skip
    page.status_code = status
    return page


@router.get(PAGE, response_class=HTMLResponse)
async def webhooks_page(request: Request) -> Response:
    who, session = await tracking_user(request)
    form = {"url": "", "events": ["open", "click"], "verdicts": list(DEFAULT_VERDICTS)}
    return await _list_page(request, who, session, form, {})


@router.post(PAGE, response_class=HTMLResponse)
async def add_webhook(
    request: Request, csrf: str = Form(""), url: str = Form(""), secret: str = Form("")
) -> Response:
    who, session = await tracking_user(request)
    _refuse_forgery(request, session, csrf)
    data = await request.form()
    events, verdicts = data.getlist("events"), data.getlist("verdicts")
    form = {"url": url, "events": events, "verdicts": verdicts}  # shown again if refused
    errors: dict[str, str] = {}
    svc = services(request)
    try:
        body = store.EventWebhookIn(
            url=url.strip(),
            secret=secret,
            events=events,
            verdicts=verdicts,  # type: ignore[arg-type]
        )
        async with svc.db.begin() as conn:
            await store.create(conn, who, body, allow_private=svc.settings.webhook_allow_private)
    except ValidationError as e:
        for problem in e.errors():
            field = str(problem["loc"][0])
            message = SAYINGS.get((field, problem["type"]), problem["msg"])
            if field in ("events", "verdicts") and problem["type"] == "too_short":
                message = f"Choose at least one of the {field}."
            errors.setdefault(field, message)
    except CrmError as e:
        errors[e.field or "url"] = e.message.removeprefix("url: ")
    else:
        return RedirectResponse(PAGE, status_code=303)
    return await _list_page(request, who, session, form, errors, status=422)


async def _hook(request: Request, company_id: int, hook_id: int) -> dict[str, Any]:
    try:
        async with services(request).db.connect() as conn:
            return jsonable(await store.get(conn, company_id, hook_id))
    except NotFound:
        raise PageExit(HTMLResponse("webhook not found", status_code=404)) from None


@router.get(PAGE + "/{hook_id}", response_class=HTMLResponse)
async def deliveries_page(request: Request, hook_id: int) -> Response:
    who, session = await tracking_user(request)
    hook = await _hook(request, who.company_id, hook_id)
    async with services(request).db.connect() as conn:
        rows = await store.deliveries(conn, who.company_id, hook_id, 200)
    return render(
        request, "webhook.html", who, session, hook=hook,
        deliveries=[jsonable(r) for r in rows], names=dict(EVENTS), one=ONE_EVENT,
    )  # fmt: skip


@router.post(PAGE + "/{hook_id}/paused")
async def pause(
    request: Request, hook_id: int, csrf: str = Form(""), paused: str = Form("")
) -> Response:
    who, session = await tracking_user(request)
    _refuse_forgery(request, session, csrf)
    await _hook(request, who.company_id, hook_id)
    async with services(request).db.begin() as conn:
        await store.set_paused(conn, who.company_id, hook_id, paused == "1")
    return RedirectResponse(PAGE, status_code=303)


@router.get(PAGE + "/{hook_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, hook_id: int) -> Response:
    who, session = await tracking_user(request)
    hook = await _hook(request, who.company_id, hook_id)
    return render(request, "webhook_delete.html", who, session, hook=hook)


@router.post(PAGE + "/{hook_id}/delete")
async def delete(request: Request, hook_id: int, csrf: str = Form("")) -> Response:
    who, session = await tracking_user(request)
    _refuse_forgery(request, session, csrf)
    await _hook(request, who.company_id, hook_id)
    async with services(request).db.begin() as conn:
        await store.remove(conn, who.company_id, hook_id)
    return RedirectResponse(PAGE, status_code=303)
