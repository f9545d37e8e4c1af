"""Request dependencies: the services, the caller (API key), permission checks and id bounds."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request

from mailbeacon.api.context import Services
from mailbeacon.api.errors import ApiError, IdOutOfRange
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.users import Principal, authenticate_key

# Ids are 64-bit signed integers in both engines; a bigger one cannot name a row, and
# handing it to the database driver fails ("Python int too large") with a 500.
MAX_ID = 2**63 - 1


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def _out_of_range(value: str) -> bool:
    """Whether an integer literal (the only kind checked here) cannot be an id."""
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        return False  # not a number at all: the route's own validation answers 422
    return not 1 <= int(text) <= MAX_ID


async def ids_in_range(request: Request) -> None:
    """Every route's `*_id` path and query parameters must be possible ids.

    An app-wide dependency, so it runs before the route's own parameters are converted:
    an id no row can have is 404 in a path (nothing there) and 422 in a query.
    """
    for name, value in request.path_params.items():
        if _is_id(name) and isinstance(value, str) and _out_of_range(value):
            raise IdOutOfRange(404, "not_found", f"{name} {value} does not exist", name)
    for name, value in request.query_params.multi_items():
        if _is_id(name) and _out_of_range(value):
            raise IdOutOfRange(
                422, "invalid", f"{name}: must be an id between 1 and {MAX_ID}", name
            )


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def principal(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <API key>`; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "send your API key as 'Authorization: Bearer <key>'")
    svc = services(request)
    async with svc.db.connect() as conn:
        who = await authenticate_key(conn, key.strip())
    if who is None:
        raise ApiError(401, "unauthorized", "the API key is unknown or revoked")
    return who


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that lets the caller through only if the matrix allows it."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        if not allowed(who.role, who.plan, permission):
            raise ApiError(
                403,
                "forbidden",
                f"the {who.role} role cannot {permission.value.replace('_', ' ')} "
                f"on the {who.plan} plan",
            )
        return who

    return check
