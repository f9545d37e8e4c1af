"""/api/v1/company: the caller's company, its tracking and privacy settings, its plan's
limits and what is used of them (crm.company_settings)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from mailbeacon.api.context import Services
from mailbeacon.api.deps import require, services
from mailbeacon.api.responses import BODY, DOCUMENT_KEY, EVERY_ROUTE
from mailbeacon.crm import company_settings
from mailbeacon.crm.access import Permission
from mailbeacon.crm.company_settings import MAX_DAYS
from mailbeacon.crm.users import Principal

router = APIRouter(
    prefix="/api/v1/company",
    tags=["company"],
    responses=EVERY_ROUTE,
    dependencies=[DOCUMENT_KEY],
)

Days = Field(None, ge=0, le=MAX_DAYS, description="days; 0 keeps them for ever")


class TrackingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    anonymize_ip: bool | None = Field(
        None, description="cut readers' addresses to a /24 (/48) before a hit is written"
    )
    hit_retention_days: int | None = Days
    address_retention_days: int | None = Days


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking: TrackingIn


class Tracking(BaseModel):
    anonymize_ip: bool
    hit_retention_days: int = Field(description="raw hits are deleted after; 0: kept")
    address_retention_days: int = Field(
        description="readers' addresses and user agents are blanked after; 0: kept"
    )


class Limits(BaseModel):
    max_users: int | None = Field(description="the plan's limit of users; null: none")
    max_leads: int | None = Field(description="the plan's limit of leads; null: none")
    users: int = Field(description="active users now")
    leads: int = Field(description="leads now")


class CompanyOut(BaseModel):
    id: int
    name: str
    plan: str
    plan_label: str
    tracking: Tracking
    limits: Limits


@router.get("", response_model=CompanyOut)
async def get_company(
    who: Principal = Depends(require(Permission.VIEW_TRACKING)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The company's settings (administrators, company and marketing managers)."""
    async with svc.db.connect() as conn:
        return await company_settings.company_settings(conn, who)


@router.patch("", response_model=CompanyOut, responses=BODY)
async def change_company(
    body: CompanyIn,
    who: Principal = Depends(require(Permission.MANAGE_COMPANY)),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change any of the tracking settings (administrators and company managers)."""
    changes = body.tracking.model_dump(exclude_unset=True)
    async with svc.db.begin() as conn:
        return await company_settings.change_tracking(conn, who, changes)
