"""One error shape everywhere: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailbeacon.crm.errors import CrmError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


class IdOutOfRange(ApiError):
    """An id no row can have (below 1 or past 64 bits): a page answers its own HTML 404."""


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field
    err.update(extra)
    return {"error": err}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid",
    501: "not_implemented",
}


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _missing_id(e: RequestValidationError) -> ApiError | None:
    """A path id past the documented bounds names nothing: 404, like any id with no row
    (`deps.ids_in_range` answers the same for ids the columns cannot hold)."""
    for err in e.errors():
        loc = tuple(err.get("loc", ()))
        bound = err.get("type") in ("less_than_equal", "greater_than_equal")
        if bound and len(loc) == 2 and loc[0] == "path" and str(loc[1]).endswith("_id"):
            name = str(loc[1])
            return ApiError(404, "not_found", f"{name} {err.get('input')} does not exist", name)
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(error_body(e.code, e.message, e.field), status_code=e.status)

    @app.exception_handler(CrmError)
    async def _crm(_: Request, e: CrmError) -> JSONResponse:
        return JSONResponse(error_body(e.code, e.message, e.field), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        missing = _missing_id(e)
        if missing is not None:
            return JSONResponse(
                error_body(missing.code, missing.message, missing.field), status_code=404
            )
        problems = [
            {"field": _field_of(tuple(err.get("loc", ()))), "message": err.get("msg", "")}
            for err in e.errors()
        ]
        first = problems[0] if problems else {"field": "body", "message": "invalid body"}
        return JSONResponse(
            error_body(
                "invalid", f"{first['field']}: {first['message']}", first["field"], details=problems
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(e.status_code, "error")
        headers = getattr(e, "headers", None)
        return JSONResponse(
            error_body(code, str(e.detail)), status_code=e.status_code, headers=headers
        )
