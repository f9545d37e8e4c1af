"""Request dependencies: the services, the caller (API key), permission checks and id bounds."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request

from mailbeacon.api.context import Services
from mailbeacon.api.errors import ApiError, IdOutOfRange
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.users import Principal, authenticate_key

# The largest id a row can have. The tables that grow with traffic (messages, hits,
# events, rule runs, jobs, deliveries) have 64-bit ids; the others (companies, users,
# leads, lists, campaigns, rules, ...) are 32-bit in PostgreSQL. A bigger number names
# no row, and handed to the database driver it fails ("Python int too large", "value out
# of int32 range") with a 500.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
BIG_IDS = frozenset({"message_id", "hit_id", "event_id", "run_id", "job_id", "delivery_id"})


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def max_id(name: str) -> int:
    return MAX_BIG_ID if name in BIG_IDS else MAX_ID


def _out_of_range(name: str, value: str) -> bool:
    """Whether an integer literal (the only kind checked here) cannot be an id."""
    text = value.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit():
        return False  # not a number at all: the route's own validation answers 422
    # (int() refuses strings of thousands of digits; none of those is an id anyway.)
    return len(digits) > 19 or not 1 <= int(text) <= max_id(name)


async def ids_in_range(request: Request) -> None:
    """Every route's `*_id` path and query parameters must be possible ids.

    An app-wide dependency, so it runs before the route's own parameters are converted:
    an id no row can have is 404 in a path (nothing there) and 422 in a query.
    """
    for name, value in request.path_params.items():
        if _is_id(name) and isinstance(value, str) and _out_of_range(name, value):
            shown = value if len(value) <= 40 else value[:40] + "..."
            raise IdOutOfRange(404, "not_found", f"{name} {shown} does not exist", name)
    for name, value in request.query_params.multi_items():
        if _is_id(name) and _out_of_range(name, value):
            message = f"{name}: must be an id between 1 and {max_id(name)}"
            raise IdOutOfRange(422, "invalid", message, name)


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
