"""/api/v1/rules: automation rules (filled in by the automation issue)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from mailbeacon.api.deps import require
from mailbeacon.api.errors import ApiError
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
_LATER = "automation rules arrive with the automation issue"


@router.post("", status_code=201)
async def create_rule(who: Principal = Depends(require(Permission.MANAGE_TRACKING))) -> Any:
    raise ApiError(501, "not_implemented", _LATER)


@router.get("")
async def list_rules(who: Principal = Depends(require(Permission.MANAGE_TRACKING))) -> Any:
    raise ApiError(501, "not_implemented", _LATER)


@router.get("/{rule_id}")
async def get_rule(
    rule_id: int, who: Principal = Depends(require(Permission.MANAGE_TRACKING))
) -> Any:
    raise ApiError(501, "not_implemented", _LATER)


@router.patch("/{rule_id}")
async def patch_rule(
    rule_id: int, who: Principal = Depends(require(Permission.MANAGE_TRACKING))
) -> Any:
    raise ApiError(501, "not_implemented", _LATER)


@router.delete("/{rule_id}")
async def delete_rule(
    rule_id: int, who: Principal = Depends(require(Permission.MANAGE_TRACKING))
) -> Any:
    raise ApiError(501, "not_implemented", _LATER)
