"""Lists of leads: who a campaign goes to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.crm.leads import LEAD_FIELDS, visible_leads
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import leads, list_members, lists


async def create_list(conn: AsyncConnection, who: Principal, name: str) -> dict[str, Any]:
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", field="name")
    created = now()
    result = await conn.execute(
        insert(lists)
        .values(company_id=who.company_id, name=name, created_at=created)
        .returning(lists.c.id)
    )
    list_id = int(result.scalar_one())
    return {"id": list_id, "name": name, "created_at": created, "size": 0, "lead_count": 0}


async def all_lists(conn: AsyncConnection, who: Principal) -> list[dict[str, Any]]:
    """The company's lists, oldest first, each with `lead_count`: the members the caller
    may see (a salesperson counts their own leads)."""
    counted = visible_leads(
        who,
        select(list_members.c.list_id, func.count().label("n"))
        .join(leads, leads.c.id == list_members.c.lead_id)
        .where(list_members.c.company_id == who.company_id)
        .group_by(list_members.c.list_id),
    ).subquery()
    query = (
        select(
            lists.c.id,
            lists.c.name,
            lists.c.created_at,
            func.coalesce(counted.c.n, 0).label("lead_count"),
        )
        .outerjoin(counted, counted.c.list_id == lists.c.id)
        .where(lists.c.company_id == who.company_id)
        .order_by(lists.c.id)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def rename_list(
    conn: AsyncConnection, who: Principal, list_id: int, name: str
) -> dict[str, Any]:
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", field="name")
    await get_list(conn, who.company_id, list_id)
    await conn.execute(
        update(lists)
        .where(lists.c.id == list_id, lists.c.company_id == who.company_id)
        .values(name=name)
    )
    return await get_list(conn, who.company_id, list_id)


async def remove_member(conn: AsyncConnection, who: Principal, list_id: int, lead_id: int) -> None:
    """Take a lead the caller may see off a list; 404 if the list, the lead or the
    membership does not exist."""
    await get_list(conn, who.company_id, list_id)
    lead = await conn.scalar(visible_leads(who, select(leads.c.id)).where(leads.c.id == lead_id))
    if lead is None:
        raise NotFound(f"lead {lead_id} does not exist", field="lead_id")
    if not await remove_lead(conn, who.company_id, list_id, lead_id):
        raise NotFound(f"lead {lead_id} is not on list {list_id}", field="lead_id")


async def get_list(conn: AsyncConnection, company_id: int, list_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(lists.c.id, lists.c.name, lists.c.created_at).where(
                    lists.c.id == list_id, lists.c.company_id == company_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"list {list_id} does not exist")
    return dict(row)


async def add_leads(
    conn: AsyncConnection, who: Principal, list_id: int, lead_ids: list[int]
) -> dict[str, Any]:
    """Add leads to a list; all or nothing: an unknown lead id adds none."""
    await get_list(conn, who.company_id, list_id)
    wanted = sorted(set(lead_ids))
    found = set(
        (
            await conn.execute(visible_leads(who, select(leads.c.id)).where(leads.c.id.in_(wanted)))
        ).scalars()
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"leads {missing} do not exist", field="lead_ids")
    present = set(
        (
            await conn.execute(
                select(list_members.c.lead_id).where(
                    list_members.c.list_id == list_id, list_members.c.lead_id.in_(wanted)
                )
            )
        ).scalars()
    )
    new = [i for i in wanted if i not in present]
    if new:
        at = now()
        await conn.execute(
            insert(list_members),
            [
                {"list_id": list_id, "lead_id": i, "company_id": who.company_id, "added_at": at}
                for i in new
            ],
        )
    return {"list_id": list_id, "added": len(new), "already_members": len(present)}


async def remove_lead(conn: AsyncConnection, company_id: int, list_id: int, lead_id: int) -> bool:
    result = await conn.execute(
        delete(list_members).where(
            list_members.c.list_id == list_id,
            list_members.c.lead_id == lead_id,
            list_members.c.company_id == company_id,
        )
    )
    return result.rowcount > 0


async def add_lead(conn: AsyncConnection, company_id: int, list_id: int, lead_id: int) -> bool:
    """Add one lead by id, unscoped by role (automation acts for the company)."""
    exists = await conn.execute(
        select(list_members.c.lead_id).where(
            list_members.c.list_id == list_id, list_members.c.lead_id == lead_id
        )
    )
    if exists.scalar() is not None:
        return False
    await get_list(conn, company_id, list_id)
    await conn.execute(
        insert(list_members).values(
            list_id=list_id, lead_id=lead_id, company_id=company_id, added_at=now()
        )
    )
    return True


async def list_leads(conn: AsyncConnection, who: Principal, list_id: int) -> list[dict[str, Any]]:
    await get_list(conn, who.company_id, list_id)
    query = visible_leads(
        who,
        select(*LEAD_FIELDS)
        .join(list_members, list_members.c.lead_id == leads.c.id)
        .where(list_members.c.list_id == list_id)
        .order_by(leads.c.id),
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]
