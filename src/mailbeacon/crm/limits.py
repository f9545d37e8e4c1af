"""Plan limits: how many users and leads a company's plan allows, enforced on every create.

The limits are data (`plans.max_users`, `plans.max_leads`; NULL is unlimited). Every
path that adds a user or a lead asks here first, inside the transaction that adds it:
the API, the pages, the CLI, CSV imports, forward-to-a-friend and the demo all go
through `crm`, so none can slip past. Going over answers `PlanLimit` (HTTP 403,
`plan_limit`; the CLI exits 1 with the same words), naming the limit and the plan.

What counts: users who hold a seat (active, invited ones included: an invitation takes
its seat until deactivated); leads not erased. A deactivated user frees their seat.

On PostgreSQL the company row is locked (`FOR UPDATE`) before counting, so two
requests at once cannot both take the last seat; SQLite has one writer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.store.schema import companies, leads, plans, users

# The status of each company's one placeholder row that keeps an erased lead's sent
# mail answering (see `crm.erase`); no query of leads ever shows it, no limit counts it.
ERASED = "erased"


class PlanLimit(CrmError):
    status = 403
    code = "plan_limit"


@dataclass(frozen=True, slots=True)
class Limits:
    """A company's plan and how much of it is used."""

    plan: str
    plan_label: str
    max_users: int | None
    users: int
    max_leads: int | None
    leads: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "max_users": self.max_users,
            "users": self.users,
            "max_leads": self.max_leads,
            "leads": self.leads,
        }


async def _plan(conn: AsyncConnection, company_id: int, *, lock: bool) -> Any:
    query = (
        select(companies.c.plan, plans.c.label, plans.c.max_users, plans.c.max_leads)
        .join(plans, plans.c.name == companies.c.plan)
        .where(companies.c.id == company_id)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=companies)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"company {company_id} does not exist", field="company")
    return row


async def lock_company(conn: AsyncConnection, company_id: int) -> None:
    """Serialise changes to the company's users and leads until the transaction ends
    (PostgreSQL; SQLite already lets one writer at a time)."""
    if conn.dialect.name == "postgresql":
        query = select(companies.c.id).where(companies.c.id == company_id).with_for_update()
        await conn.execute(query)


async def seats_taken(conn: AsyncConnection, company_id: int) -> int:
    query = select(func.count()).where(users.c.company_id == company_id, users.c.active.is_(True))
    return int((await conn.execute(query)).scalar_one())


async def lead_count(conn: AsyncConnection, company_id: int) -> int:
    query = select(func.count()).where(leads.c.company_id == company_id, leads.c.status != ERASED)
    return int((await conn.execute(query)).scalar_one())


async def company_limits(conn: AsyncConnection, company_id: int) -> Limits:
    """The plan's limits and the company's use of them, for the settings page and API."""
    row = await _plan(conn, company_id, lock=False)
    return Limits(
        plan=row.plan,
        plan_label=row.label,
        max_users=row.max_users,
        users=await seats_taken(conn, company_id),
        max_leads=row.max_leads,
        leads=await lead_count(conn, company_id),
    )


ADVICE = {
    "users": "deactivate a user or move to a larger plan",
    "leads": "erase some leads or move to a larger plan",
}


def _over(what: str, limit: int, plan: str) -> PlanLimit:
    return PlanLimit(
        f"plan limit: the {plan} plan allows {limit} {what} (max_{what}) and this company "
        f"has {limit}; {ADVICE[what]}"
    )


async def check_user_seat(conn: AsyncConnection, company_id: int) -> None:
    """Raise `PlanLimit` unless one more user fits the company's plan."""
    row = await _plan(conn, company_id, lock=True)
    if row.max_users is not None and await seats_taken(conn, company_id) >= row.max_users:
        raise _over("users", row.max_users, row.plan)


async def lead_room(conn: AsyncConnection, company_id: int) -> tuple[int | None, str]:
    """How many more leads the plan allows (None: no limit), and the words a refused
    row gets ("plan limit: the trial plan allows 1000 leads ...")."""
    row = await _plan(conn, company_id, lock=True)
    if row.max_leads is None:
        return None, ""
    room = max(0, row.max_leads - await lead_count(conn, company_id))
    return room, _over("leads", row.max_leads, row.plan).message


async def check_lead_room(conn: AsyncConnection, company_id: int) -> None:
    """Raise `PlanLimit` unless one more lead fits the company's plan."""
    room, message = await lead_room(conn, company_id)
    if room is not None and room < 1:
        raise PlanLimit(message)
