"""/api/v1/api-keys: the caller's own API keys. Any user may hold keys; each sees and
revokes only their own (another user's key is 404). A key is shown once, when it is
made; the database keeps its SHA-256 and the prefix that names it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import principal, services
from mailbeacon.api.fields import PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND
from mailbeacon.crm import users as crm_users
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/api-keys", tags=["api keys"], responses=EVERY_ROUTE, dependencies=[DOCUMENT_KEY]
)


class KeyIn(BaseModel):
    name: str | None = Field(default=None, max_length=100, description="what the key is for")


@router.get("")
async def list_keys(
    who: Principal = Depends(principal), svc: Services = Depends(services)
) -> list[dict[str, Any]]:
    """The caller's keys, newest first: `{"id", "name", "prefix", "created_at",
    "last_used_at", "revoked_at"}` (never the key itself)."""
    async with svc.db.connect() as conn:
        return [jsonable(k) for k in await crm_users.list_api_keys(conn, who.user_id)]


async def new_key(svc: Services, who: Principal, name: str | None) -> dict[str, Any]:
    """Make a key for `who`: the listing's fields plus `key`, shown this once."""
    async with svc.db.begin() as conn:
        key = await crm_users.create_api_key(conn, who.user_id, name)
        made = next(
            k
            for k in await crm_users.list_api_keys(conn, who.user_id)
            if key.startswith(f"mb_{k['prefix']}_")
        )
    return jsonable(made) | {"key": key}


@router.post("", status_code=201, responses=BODY)
async def create_key(
    body: KeyIn | None = None,
    who: Principal = Depends(principal),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A new key for the caller: `key` is in this answer only; keep it."""
    return await new_key(svc, who, body.name if body else None)


@router.delete("/{key_id}", status_code=204, responses=FOUND)
async def revoke_key(
    key_id: PathId, who: Principal = Depends(principal), svc: Services = Depends(services)
) -> Response:
    """Revoke one of the caller's keys: the next request with it gets 401."""
    async with svc.db.begin() as conn:
        await crm_users.revoke_own_api_key(conn, who.user_id, key_id)
    return Response(status_code=204)
