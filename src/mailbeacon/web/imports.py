"""Dashboard pages for importing leads from a CSV file.

A small file imports in the request and the answer page shows the counts and every
rejected line with its reason (`crm.imports.import_leads`, as `POST
/api/v1/leads/import`). A large one (`crm.import_jobs.is_large`) is stored as a job for
the `lead-imports` stage, and its page shows a progress bar that `static/import.js`
keeps current from the job's status; the job lives in the database, so a reload finds
it where it is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from mailbeacon.crm import import_jobs
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.errors import CrmError
from mailbeacon.crm.imports import import_leads
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable
from mailbeacon.web import session as sessions
from mailbeacon.web.auth import page_user, services
from mailbeacon.web.leads import csrf_ok, render_missing
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)


async def _form_page(
    request: Request,
    who: Principal,
    session: sessions.Session,
    *,
    errors: dict[str, str] | None = None,
    list_id: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    async with services(request).db.connect() as conn:
        lists = [jsonable(r) for r in await crm_lists.all_lists(conn, who)]
    page = render(
        request,
        "import.html",
        who,
        session,
        lists=lists,
        errors=errors or {},
        list_id=list_id,
    )
    page.status_code = status_code
    return page


@router.get("/leads/import", response_class=HTMLResponse)
async def import_page(request: Request) -> Response:
    who, session = await page_user(request)
    return await _form_page(request, who, session)


@router.post("/leads/import", response_class=HTMLResponse)
async def import_upload(request: Request) -> Response:
    who, session = await page_user(request)
    form = await request.form()
    if not csrf_ok(request, session, str(form.get("csrf", ""))):
        return Response("CSRF token missing or wrong", status_code=403)
    raw_list = str(form.get("list_id", "")).strip()
    list_id = int(raw_list) if raw_list.isdigit() and len(raw_list) < 10 else None
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = {"file": "Choose a CSV file to import."}
        return await _form_page(
            request, who, session, errors=errors, list_id=raw_list, status_code=422
        )
    data = await upload.read()
    try:
        if import_jobs.is_large(data):
            async with services(request).db.begin() as conn:
                job = await import_jobs.queue_import(
                    conn, who, data, filename=upload.filename, list_id=list_id
                )
            return RedirectResponse(f"/leads/import/{job['id']}", status_code=303)
        result = await import_leads(services(request).db, who, data, list_id=list_id)
    except CrmError as e:
        field = "list_id" if e.field == "list_id" or "list" in e.message else "file"
        errors = {field: e.message}
        return await _form_page(
            request, who, session, errors=errors, list_id=raw_list, status_code=e.status
        )
    return render(
        request,
        "import_result.html",
        who,
        session,
        result=result.as_dict(),
        filename=upload.filename,
        job=None,
    )


async def _job(request: Request, who: Principal, job_id: int) -> dict[str, Any] | None:
    try:
        async with services(request).db.connect() as conn:
            return jsonable(await import_jobs.get_job(conn, who.company_id, job_id))
    except CrmError:
        return None


@router.get("/leads/import/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: int) -> Response:
    who, session = await page_user(request)
    job = await _job(request, who, job_id)
    if job is None:
        return render_missing(request, who, session)
    if job["status"] == "done":
        result = {k: job[k] for k in ("imported", "updated", "rejected")}
        return render(
            request,
            "import_result.html",
            who,
            session,
            result=result,
            filename=job["filename"],
            job=job,
        )
    return render(request, "import_job.html", who, session, job=job)


@router.get("/leads/import/{job_id}/status")
async def job_status(request: Request, job_id: int) -> Response:
    """The job as `GET /api/v1/leads/imports/{id}` answers it, for the page's script."""
    who, _ = await page_user(request)
    job = await _job(request, who, job_id)
    if job is None:
        return JSONResponse({"error": {"code": "not_found", "message": "no such import"}}, 404)
    return JSONResponse(job, headers={"Cache-Control": "no-store"})
