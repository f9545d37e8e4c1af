"""Companies: the tenant every row belongs to, and the plan it is on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import Plan
from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.store import now
from mailbeacon.store.schema import companies


async def create_company(conn: AsyncConnection, name: str, plan: str) -> int:
    name = name.strip()
    if not name:
        raise Invalid("company name must not be empty", field="name")
    try:
        Plan(plan)
    except ValueError:
        raise Invalid(
            f"unknown plan {plan!r}; choose one of {', '.join(p.value for p in Plan)}",
            field="plan",
        ) from None
    result = await conn.execute(
        insert(companies).values(name=name, plan=plan, created_at=now()).returning(companies.c.id)
    )
    return int(result.scalar_one())


async def get_company(conn: AsyncConnection, company_id: int) -> dict[str, Any]:
    row = (
        (await conn.execute(select(companies).where(companies.c.id == company_id)))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"company {company_id} does not exist")
    return dict(row)


async def find_company_by_name(conn: AsyncConnection, name: str) -> int | None:
    result = await conn.execute(select(companies.c.id).where(companies.c.name == name))
    value = result.scalar()
    return int(value) if value is not None else None
