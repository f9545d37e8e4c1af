"""Who the lead and list commands act as: a company's first administrator.

The command line is the server's operator, not a user with an API key; the company's
first administrator (else company manager) is who its leads and lists are made by, so
imported leads have an owner and every crm rule (roles, scoping) still applies.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.crm.users import Principal, get_principal
from mailbeacon.store.schema import companies, users

ACTING_ROLES = ("administrator", "company_manager")


async def acting_principal(conn: AsyncConnection, company_id: int | None) -> Principal:
    if company_id is None:
        ids = (await conn.execute(select(companies.c.id).limit(2))).scalars().all()
        if len(ids) != 1:
            raise CrmError("there is more than one company (or none): name one", field="company")
        company_id = int(ids[0])
    for role in ACTING_ROLES:
        user_id = await conn.scalar(
            select(users.c.id)
            .where(
                users.c.company_id == company_id,
                users.c.role == role,
                users.c.active.is_(True),
            )
            .order_by(users.c.id)
            .limit(1)
        )
        if user_id is not None:
            who = await get_principal(conn, int(user_id))
            if who is not None:
                return who
    raise NotFound(
        f"company {company_id} does not exist or has no active administrator", field="company"
    )
