"""The scoring model's page: the company's points and half-life in one small form.

It validates with the API's own model (`api.scoring.ScoringPatch`) and saves through
`crm.scoring`, as `PATCH /api/v1/scoring` does; an error is shown next to its field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from mailbeacon.api.scoring import ScoringPatch
from mailbeacon.crm import scoring
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import services, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
# (field, visible label, hint) in the form's order.
FIELDS = (
    ("open_points", "Points for an open", "a person's first open of a message"),
    ("click_points", "Points for a click", "each link a person clicks in a message"),
    ("forward_points", "Points for a forward", "once per message"),
    ("unsubscribe_points", "Points for an unsubscribe", "usually negative"),
    ("half_life_days", "Half-life in days", "points halve this often; 0: they never fade"),
)


async def _page(
    request: Request, form: dict[str, Any], errors: dict[str, str], saved: bool, status: int = 200
) -> Response:
    who, session = await tracking_user(request)
    page = render(
        request, "scoring.html", who, session, form=form, fields=FIELDS, errors=errors, saved=saved
    )
    page.status_code = status
    return page


@router.get("/scoring", response_class=HTMLResponse)
async def scoring_page(request: Request) -> Response:
    who, _ = await tracking_user(request)
    async with services(request).db.connect() as conn:
        model = await scoring.get_model(conn, who.company_id)
    form = model.as_json() | {"half_life_days": f"{model.half_life_days:g}"}  # 14, not 14.0
    return await _page(request, form, {}, request.query_params.get("saved") == "1")


@router.post("/scoring", response_class=HTMLResponse)
async def save_scoring(request: Request, csrf: str = Form("")) -> Response:
    who, session = await tracking_user(request)
    if not sessions.csrf_ok(services(request).settings.secret_keys, session, csrf):
        return Response("CSRF token missing or wrong", status_code=403)
    data = await request.form()
    form: dict[str, Any] = {name: str(data.get(name, "")).strip() for name, _, _ in FIELDS}
    form["enabled"] = data.get("enabled") == "1"
    try:
        body = ScoringPatch.model_validate(form)
    except ValidationError as e:
        errors = {str(err["loc"][0]): err["msg"] for err in e.errors() if err["loc"]}
        return await _page(request, form, errors, False, status=422)
    async with services(request).db.begin() as conn:
        await scoring.update_model(conn, who.company_id, body.model_dump(exclude_none=True))
    return RedirectResponse("/scoring?saved=1", status_code=303)
