"""Domain errors: the API and CLI turn each into one clear answer."""

from __future__ import annotations


class CrmError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(CrmError):
    status = 404
    code = "not_found"


class Conflict(CrmError):
    status = 409
    code = "conflict"


class Invalid(CrmError):
    status = 422
    code = "invalid"


class Forbidden(CrmError):
    status = 403
    code = "forbidden"
