"""/api/v1/lists: lists of leads and their members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.fields import Id, PathId
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE, FOUND
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal
from mailbeacon.store.render import jsonable

router = APIRouter(
    prefix="/api/v1/lists",
    tags=["lists"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)


class ListIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class MembersIn(BaseModel):
    lead_ids: list[Id] = Field(min_length=1, max_length=10_000)


@router.post("", status_code=201, responses=BODY)
async def create_list(
    body: ListIn,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        return jsonable(await crm_lists.create_list(conn, who, body.name))


@router.get("")
async def all_lists(
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> list[dict[str, Any]]:
    """The company's lists, each with `lead_count` (a salesperson counts their own)."""
    async with svc.db.connect() as conn:
        return [jsonable(r) for r in await crm_lists.all_lists(conn, who)]


@router.patch("/{list_id}", responses={**BODY, **FOUND})
async def rename_list(
    list_id: PathId,
    body: ListIn,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        return jsonable(await crm_lists.rename_list(conn, who, list_id, body.name))


@router.delete("/{list_id}/leads/{lead_id}", status_code=204, responses=FOUND)
async def remove_member(
    list_id: PathId,
    lead_id: PathId,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> Response:
    async with svc.db.begin() as conn:
        await crm_lists.remove_member(conn, who, list_id, lead_id)
    return Response(status_code=204)


@router.post("/{list_id}/leads", responses={**BODY, **FOUND})
async def add_leads(
    list_id: PathId,
    body: MembersIn,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.begin() as conn:
        return await crm_lists.add_leads(conn, who, list_id, body.lead_ids)


@router.get("/{list_id}/leads", responses=FOUND)
async def list_leads(
    list_id: PathId,
    who: Principal = Depends(require(Permission.MANAGE_LEADS)),
    svc: Services = Depends(services),
) -> list[dict[str, Any]]:
    async with svc.db.connect() as conn:
        return [jsonable(r) for r in await crm_lists.list_leads(conn, who, list_id)]
