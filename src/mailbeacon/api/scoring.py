"""/api/v1/scoring: the company's scoring model, read and changed.

Scores are tracking data: the three sales roles get 403, as for rules. The model is
explained in `crm.scoring`; it is applied by the automation stage (`automation.scoring`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE
from mailbeacon.crm import scoring
from mailbeacon.crm.access import Permission
from mailbeacon.crm.users import Principal

router = APIRouter(
    prefix="/api/v1/scoring",
    tags=["scoring"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)
POINTS = {"ge": -10_000, "le": 10_000}


class ScoringOut(BaseModel):
    enabled: bool
    open_points: int
    click_points: int
    forward_points: int
    unsubscribe_points: int
    half_life_days: float


class ScoringPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    # A person's first open of a message.
    open_points: int | None = Field(None, **POINTS)
    # Each link a person clicks in a message (the first click of it).
    click_points: int | None = Field(None, **POINTS)
    # A forward to a friend, or a reader detected as a forward (once per message).
    forward_points: int | None = Field(None, **POINTS)
    # Usually negative.
    unsubscribe_points: int | None = Field(None, **POINTS)
    # Points halve every this many days; 0: engagement never fades.
    half_life_days: float | None = Field(None, ge=0, le=3650)


@router.get("", response_model=ScoringOut)
async def get_scoring(
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    async with svc.db.connect() as conn:
        return (await scoring.get_model(conn, who.company_id)).as_json()


@router.patch("", response_model=ScoringOut, responses=BODY)
async def patch_scoring(
    body: ScoringPatch,
    who: Principal = Depends(require(Permission.MANAGE_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change the fields sent; applies to engagement from now on (null keeps a field)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    async with svc.db.begin() as conn:
        return (await scoring.update_model(conn, who.company_id, changes)).as_json()
