"""What the API answers besides success, as the OpenAPI document shows it.

Every error has one shape (`errors.error_body`); the routers list, per route, which
statuses it can give, from the dicts here, so /api/openapi.json names every status the
API answers and a client generated from it knows the error body. The caller's key is
documented as an HTTP bearer scheme (`BEARER`): it only describes the header,
`deps.principal` is what checks it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    # Some errors add their own keys (a 422 lists every problem under `details`).
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="what went wrong, for programs: not_found, invalid, ...")
    message: str = Field(description="what went wrong, for people, and what to do")
    field: str | None = Field(None, description="the request field at fault, when one is")


class ErrorBody(BaseModel):
    error: ErrorDetail


_WHY = {
    400: "The body is not valid JSON",
    401: "No API key, or one that is unknown or revoked",
    403: "The key's role or the company's plan does not allow this",
    404: "Nothing with this id in the caller's company",
    409: "The request conflicts with the current state (`error.code` says which)",
    413: "The request body is over the size limit",
    422: "A parameter or body field is invalid; `error.field` names it",
    502: "The mail server refused the message or could not be reached",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries for these error statuses, each with the error body."""
    return {status: {"model": ErrorBody, "description": _WHY[status]} for status in statuses}


# Any request to any route may get these: the key is checked first, the body size too.
EVERY_ROUTE = errors(401, 403, 413)
# A route with path or query parameters, or one that names a resource in its path.
PARAMS = errors(422)
FOUND = errors(404, 422)
# A route that reads a JSON body.
BODY = errors(400, 422)

BEARER = HTTPBearer(
    auto_error=False,  # `deps.principal` answers the 401, in the error shape
    description="An API key: `Authorization: Bearer mb_...` (`mailbeacon user create`)",
)
DOCUMENT_KEY = Depends(BEARER)
