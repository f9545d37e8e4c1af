"""/api/v1/audit: the audit log of erasures and exports, for those who run the company.

Read-only: the log is append-only (`crm.audit`), so this router has no write route.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.responses import DOCUMENT_KEY, EVERY_ROUTE, PARAMS
from mailbeacon.crm import audit
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/audit", tags=["audit"], responses=EVERY_ROUTE, dependencies=[DOCUMENT_KEY]
)


@router.get("", responses=PARAMS)
async def audit_entries(
    request: Request,
    action: Literal["erase", "export"] | None = Query(default=None),
    email: str | None = Query(
        default=None, max_length=320, description="the entries about this address (by hash)"
    ),
    limit: int = Query(default=50, ge=1, le=audit.MAX_ENTRIES),
    cursor: int | None = Query(
        default=None, ge=1, le=2**63 - 1, description="from the `Link` header: the next page"
    ),
    who: Principal = Depends(require(Permission.MANAGE_COMPANY)),
    svc: Services = Depends(services),
) -> Response:
    """Who erased or exported which lead, and when, newest first: `{"id", "at",
    "user_id", "user_email", "action", "lead_id", "lead_email_sha256", "via"}`, a page
    at a time (`Link: <...>; rel="next"` while more remain). The address is kept only as
    the SHA-256 of its lower-cased form: `email=` finds an address's entries. For
    administrators and company managers."""
    async with svc.db.connect() as conn:
        rows = await audit.entries(
            conn, who.company_id, before=cursor, limit=limit + 1, action=action, email=email
        )
    headers = {}
    if len(rows) > limit:
        rows = rows[:limit]
        next_page = request.url.include_query_params(cursor=rows[-1]["id"])
        headers["Link"] = f'<{next_page}>; rel="next"'
    body = [{k: v for k, v in jsonable(r).items() if k != "company_id"} for r in rows]
    return JSONResponse(body, headers=headers)
