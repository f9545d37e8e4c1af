"""Dashboard pages for automation rules: the list with their last run, a form to
create one, enable/disable, and a rule's last runs and webhook deliveries.

The form takes the trigger and up to `ACTION_ROWS` actions in fields (each action type
its own: points, a list, subject and HTML, a webhook's URL and secret...), builds the
API's shape from them and validates it with the same pydantic model as the API, so a
page and a script can never disagree about what a rule is. An error inside an action
is shown next to its field. (A posted `actions` JSON, the API's shape, still works.)
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from mailbeacon.automation import rules as store
from mailbeacon.automation.model import RuleIn, RulePatch
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.store.render import iso, jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import PageExit, services, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
ACTION_ROWS = 3
ACTION_TYPES = (
    ("add_score", "add to the score"),
    ("add_to_list", "add to a list"),
    ("remove_from_list", "remove from a list"),
    ("send_email", "send an email"),
    ("webhook", "call a webhook"),
    ("notify_owner", "notify the lead's owner"),
    ("assign_owner", "assign an owner"),
)
# Each action type's own fields (the form's names after `action{i}_`), as the API names them.
ACTION_FIELDS = {
    "add_score": ("points",),
    "add_to_list": ("list_id",),
    "remove_from_list": ("list_id",),
    "send_email": ("subject", "html"),
    "webhook": ("url", "secret"),
    "notify_owner": ("note",),
    "assign_owner": ("user_id",),
}
INTEGERS = ("points", "list_id", "user_id", "delay_seconds")
TRIGGERS = ("opened", "clicked", "forwarded", "unsubscribed", "not_opened")


def _csrf_ok(request: Request, session: Any, token: str) -> bool:
    return sessions.csrf_ok(services(request).settings.secret_keys, session, token)


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request) -> Response:
    who, session = await tracking_user(request)
    async with services(request).db.connect() as conn:
        rules = [jsonable(r) for r in await store.list_rules(conn, who.company_id)]
        last = await store.last_run_at(conn, who.company_id)
    for rule in rules:
        rule["last_run"] = iso(last.get(rule["id"]))
    return render(request, "rules.html", who, session, rules=rules)


@router.get("/rules/new", response_class=HTMLResponse)
async def new_rule_page(request: Request) -> Response:
    who, session = await tracking_user(request)
    form = {"trigger_type": "opened", "action0_type": "add_score", "action0_points": "10"}
    return await _form_page(request, who, session, form, "", {})


async def _form_page(
    request: Request,
    who: Any,
    session: Any,
    form: dict[str, str],
    error: str,
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    async with services(request).db.connect() as conn:
        lists = await crm_lists.all_lists(conn, who)
    page = render(
        request,
        "rule_new.html",
        who,
        session,
        form=form,
        triggers=TRIGGERS,
        error=error,
        errors=errors,
        rows=range(ACTION_ROWS),
        action_types=ACTION_TYPES,
        lists=lists,
    )
    page.status_code = status
    return page


def _actions(form: dict[str, str]) -> list[dict[str, Any]]:
    """The API's actions from the form's rows (a row without a type is no action)."""
    actions: list[dict[str, Any]] = []
    for i in range(ACTION_ROWS):
        kind = form.get(f"action{i}_type", "")
        if not kind:
            continue
        action: dict[str, Any] = {"type": kind}
        for name in (*ACTION_FIELDS.get(kind, ()), "delay_seconds"):
            value = form.get(f"action{i}_{name}", "").strip()
            if not value:
                continue
            if name in INTEGERS:
                action[name] = int(value) if value.lstrip("-").isdigit() else value
            else:
                action[name] = value
        actions.append(action)
    return actions


def _trigger(form: dict[str, str]) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": form["trigger_type"]}
    for name in ("campaign_id", "min_opens", "within_seconds"):
        if form.get(name, "").strip():
            trigger[name] = form[name].strip()
    for name in ("url_contains", "privacy_protected"):
        if form.get(name, "").strip():
            trigger[name] = form[name].strip()
    return trigger


@router.post("/rules/new", response_class=HTMLResponse)
async def create_rule(
    request: Request,
    csrf: str = Form(""),
    name: str = Form(""),
    trigger_type: str = Form("opened"),
    campaign_id: str = Form(""),
    url_contains: str = Form(""),
    min_opens: str = Form(""),
    within_seconds: str = Form(""),
    privacy_protected: str = Form(""),
    actions: str = Form(""),
    repeat: str = Form(""),
) -> Response:
    data = await request.form()
    who, session = await tracking_user(request)
    if not _csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    form = {  # shown again, as typed, if the rule is refused
        "name": name,
        "trigger_type": trigger_type,
        "campaign_id": campaign_id,
        "url_contains": url_contains,
        "min_opens": min_opens,
        "within_seconds": within_seconds,
        "privacy_protected": privacy_protected,
        "actions": actions,
        "repeat": repeat,
    }
    for i in range(ACTION_ROWS):
        for part in ("type", *{f for fs in ACTION_FIELDS.values() for f in fs}, "delay_seconds"):
            form[f"action{i}_{part}"] = str(data.get(f"action{i}_{part}", ""))
    errors: dict[str, str] = {}
    try:
        body = RuleIn.model_validate(
            {
                "name": name,
                "repeat": bool(repeat),
                "trigger": _trigger(form),
                "actions": json.loads(actions) if actions.strip() else _actions(form),
            }
        )
        async with services(request).db.begin() as conn:
            rule = await store.create_rule(conn, who, body)
    except json.JSONDecodeError as e:
        error = f"actions: not valid JSON ({e.msg} at character {e.pos})"
    except ValidationError as e:
        first = e.errors()[0]
        loc = [str(p) for p in first["loc"]]
        error = f"{'.'.join(loc)}: {first['msg']}"
        if len(loc) >= 2 and loc[0] == "actions" and loc[1].isdigit():
            # actions.0.url (or actions.0.webhook.url, the union's branch): the row's field.
            field = loc[-1] if len(loc) > 2 else "type"
            errors[f"action{loc[1]}_{field}"] = first["msg"]
            error = f"Action {int(loc[1]) + 1}: {first['msg']} (shown next to the field)."
    except CrmError as e:
        error = e.message
    else:
        return RedirectResponse(f"/rules/{rule['id']}", status_code=303)
    return await _form_page(request, who, session, form, error, errors)


@router.post("/rules/{rule_id}/enabled")
async def set_enabled(
    request: Request,
    rule_id: int,
    csrf: str = Form(""),
    enabled: str = Form(""),
    back: str = Form("list"),
) -> Response:
    who, session = await tracking_user(request)
    if not _csrf_ok(request, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    try:
        async with services(request).db.begin() as conn:
            patch = RulePatch(enabled=enabled == "1")
            await store.update_rule(conn, who.company_id, rule_id, patch)
    except NotFound:
        raise PageExit(HTMLResponse("rule not found", status_code=404)) from None
    return RedirectResponse(f"/rules/{rule_id}" if back == "rule" else "/rules", status_code=303)


@router.get("/rules/{rule_id}", response_class=HTMLResponse)
async def rule_page(request: Request, rule_id: int) -> Response:
    who, session = await tracking_user(request)
    try:
        async with services(request).db.connect() as conn:
            rule = jsonable(await store.get_rule(conn, who.company_id, rule_id))
            runs = await store.list_runs(conn, who.company_id, rule_id, 50)
            deliveries = await store.list_deliveries(conn, who.company_id, rule_id, 50)
    except NotFound:
        raise PageExit(HTMLResponse("rule not found", status_code=404)) from None
    return render(
        request,
        "rule.html",
        who,
        session,
        rule=rule,
        runs=[{**jsonable(r), "jobs": [jsonable(j) for j in r["jobs"]]} for r in runs],
        deliveries=[jsonable(d) for d in deliveries],
        pretty=lambda v: json.dumps(v, indent=2),
    )
