"""/api/v1/leads, the workspace half: search and export, edit, erase, CSV import.

Reading one lead and creating one live in `api.leads`. Score and engagement are
tracking data: the sales roles get leads without them, and a 403 if they filter or
sort by them (see `crm.search`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.fields import PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND, errors
from mailbeacon.crm import import_jobs
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm.access import Permission, allowed, sees_only_own_leads
from mailbeacon.crm.erase import erase_lead
from mailbeacon.crm.fields import company_field_names
from mailbeacon.crm.imports import import_leads
from mailbeacon.crm.search import DEFAULT_SORT, MAX_LIMIT, LeadQuery, search_leads
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

# `format=csv` answers the same leads as a spreadsheet.
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "The leads"}
}

router = APIRouter(
    prefix="/api/v1/leads", tags=["leads"], responses=EVERY_ROUTE, dependencies=[DOCUMENT_KEY]
)

CSV_COLUMNS = ("email", "first_name", "last_name", "timezone")
TRACKING_COLUMNS = ("score", "engagement")
EXPORT_PAGE = 500


class LeadPatch(BaseModel):
    email: str | None = Field(default=None, max_length=320)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    # Custom fields: a string sets the field, null removes it, fields not named stay.
    fields: dict[str, str | None] | None = None


def _tracking(who: Principal) -> bool:
    return allowed(who.role, who.plan, Permission.VIEW_TRACKING)


@router.get("", responses={**CSV, **FOUND})
async def search(
    request: Request,
    q: str | None = Query(default=None, max_length=320, description="email or name contains"),
    email: str | None = Query(default=None, max_length=320, description="exactly this address"),
    list_id: int | None = Query(default=None, ge=1, le=2**31 - 1),
    engagement: str | None = Query(
        default=None,
        description="opened, clicked, never_opened, privacy_protected, unsubscribed, bounced",
    ),
    min_score: int | None = Query(default=None, ge=-(2**31), le=2**31 - 1),
    sort: str = Query(default=DEFAULT_SORT, description="email, created_at or score; -desc"),
    limit: int = Query(default=50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=2000),
    format: Literal["json", "csv"] = "json",
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> Any:
    """The leads the caller may see, a page at a time (`Link: <...>; rel="next"` while
    more remain), or with `format=csv` every matching lead as CSV."""
    query = LeadQuery(q, email, list_id, engagement, min_score, sort, limit, cursor)
    tracking = _tracking(who)
    if format == "csv":
        return await export_csv(svc, who, query, tracking)
    async with svc.db.connect() as conn:
        rows, after = await search_leads(conn, who, query, tracking=tracking)
    headers = {}
    if after is not None:
        headers["Link"] = f'<{request.url.include_query_params(cursor=after)}>; rel="next"'
    return Response(
        content=_json([jsonable(r) for r in rows]),
        media_type="application/json",
        headers=headers,
    )


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run: a leading = + - @ is a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def export_csv(svc: Services, who: Principal, query: LeadQuery, tracking: bool) -> Response:
    async with svc.db.connect() as conn:
        # Validates the query (403/404/422) before the 200 starts, and finds the columns.
        await search_leads(conn, who, _page(query, None), tracking=tracking)
        owner = who.user_id if sees_only_own_leads(who.role) else None
        custom = await company_field_names(conn, who.company_id, owner)
    columns = [*CSV_COLUMNS, *custom, *(TRACKING_COLUMNS if tracking else ())]

    async def lines() -> AsyncIterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        after: str | None = None
        while True:
            async with svc.db.connect() as conn:
                rows, after = await search_leads(conn, who, _page(query, after), tracking=tracking)
            for row in rows:
                fields = row.get("fields") or {}
                writer.writerow(
                    [_cell(row[c]) for c in CSV_COLUMNS]
                    + [_cell(fields.get(c)) for c in custom]
                    + [_cell(row[c]) for c in (TRACKING_COLUMNS if tracking else ())]
                )
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if after is None:
                return

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
    )


def _page(query: LeadQuery, cursor: str | None) -> LeadQuery:
    return LeadQuery(
        query.q,
        query.email,
        query.list_id,
        query.engagement,
        query.min_score,
        query.sort,
        EXPORT_PAGE,
        cursor,
    )


@router.patch("/{lead_id}", responses={**BODY, **FOUND, **errors(409)})
async def patch_lead(
    lead_id: PathId,
    body: LeadPatch,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change a lead's address, names, time zone or custom fields; 409 names the lead
    that has the address already."""
    changes = body.model_dump(exclude_unset=True)
    async with svc.db.begin() as conn:
        lead = jsonable(await crm_leads.update_lead(conn, who, lead_id, changes))
    if not _tracking(who):
        lead.pop("score", None)
    return lead


@router.delete("/{lead_id}", status_code=204, responses=FOUND)
async def delete_lead(
    lead_id: PathId,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> Response:
    """Erase the lead and everything tracked about them (see `crm.erase`)."""
    async with svc.db.begin() as conn:
        await erase_lead(conn, who, lead_id)
    return Response(status_code=204)


# `?background=true`: the file is stored and imported by the `lead-imports` stage.
QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Queued: poll GET /api/v1/leads/imports/{id}",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "status": {"type": "string"}},
                    "required": ["id", "status"],
                }
            }
        },
    }
}


@router.post("/import", responses={**BODY, **errors(404), **QUEUED})
async def import_csv(
    file: UploadFile = File(description="CSV, UTF-8; email required"),
    list_id: int | None = Form(default=None, ge=1, le=2**31 - 1),
    background: bool = Query(default=False, description="queue it; answer 202 with the job"),
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> Any:
    """Import leads from a CSV file: `{"imported", "updated", "rejected": [{"line",
    "reason"}]}`, the header being line 1. With `background=true`: 202 `{"id",
    "status"}` at once, and the job's progress at `GET /api/v1/leads/imports/{id}`."""
    data = await file.read()
    if background:
        async with svc.db.begin() as conn:
            job = await import_jobs.queue_import(
                conn, who, data, filename=file.filename or "leads.csv", list_id=list_id
            )
        return JSONResponse({"id": job["id"], "status": job["status"]}, status_code=202)
    result = await import_leads(svc.db, who, data, list_id=list_id)
    return result.as_dict()


@router.get("/imports/{job_id}", responses=FOUND)
async def import_job(
    job_id: PathId,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A background import: `status` queued, running, done or failed; `processed_rows`
    of `total_rows` so far; when done `imported`, `updated` and `rejected` as the
    import answers them; when failed, `error` says why."""
    async with svc.db.connect() as conn:
        return jsonable(await import_jobs.get_job(conn, who.company_id, job_id))
