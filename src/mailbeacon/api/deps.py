"""Request dependencies: the services, the caller (API key) and permission checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Depends, Request

from mailbeacon.api.context import Services
from mailbeacon.api.errors import ApiError
from mailbeacon.crm.access import Permission, allowed
from mailbeacon.crm.users import Principal, authenticate_key


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
