"""A company's users as its administrators manage them: list, change a role, deactivate.

The rules, decided here once for the API, the page and the CLI:

- Administrators and company managers manage the users of their own company (the
  permission matrix's `manage_company`); another company's user is 404.
- Only an administrator grants the administrator role, or changes or deactivates an
  administrator: a company manager cannot raise anyone (themselves included) above
  their own role.
- Nobody deactivates themselves, and the company keeps at least one active
  administrator: the last one can be neither demoted nor deactivated.
- Reactivating takes a seat of the plan again (`crm.limits`).
- Deactivating ends the user's sessions and revokes their API keys at once
  (`crm.users.deactivate_user`) and voids any open invitation.

`actor` is the user asking; None is the server's operator (the CLI), who is bound by
the last-administrator rule only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import Role
from mailbeacon.crm.errors import Conflict, Forbidden, Invalid, NotFound
from mailbeacon.crm.limits import check_user_seat, lock_company
from mailbeacon.crm.users import Principal, deactivate_user
from mailbeacon.store.schema import users
from mailbeacon.store.schema_users import invitations

ADMIN = Role.ADMINISTRATOR.value


def _status() -> Any:
    """active, invited (no password yet, an invitation open) or deactivated."""
    invited = exists().where(invitations.c.user_id == users.c.id)
    return case(
        (users.c.active.is_(False), "deactivated"),
        (users.c.password_hash.is_(None) & invited, "invited"),
        else_="active",
    ).label("status")


USER_FIELDS = (users.c.id, users.c.email, users.c.name, users.c.role, users.c.created_at)


async def list_users(conn: AsyncConnection, company_id: int) -> list[dict[str, Any]]:
    query = (
        select(*USER_FIELDS, _status())
        .where(users.c.company_id == company_id)
        .order_by(users.c.email)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_user(conn: AsyncConnection, company_id: int, user_id: int) -> dict[str, Any]:
    query = select(*USER_FIELDS, _status()).where(
        users.c.id == user_id, users.c.company_id == company_id
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return dict(row)


def check_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise Invalid(
            f"role: unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}",
            field="role",
        ) from None


def may_grant(actor: Principal | None, role: str) -> None:
    """Only an administrator (or the operator) hands out the administrator role."""
    if role == ADMIN and actor is not None and actor.role != ADMIN:
        raise Forbidden("only an administrator can make someone an administrator", field="role")


async def _other_active_admins(conn: AsyncConnection, company_id: int, user_id: int) -> int:
    query = select(func.count()).where(
        users.c.company_id == company_id,
        users.c.role == ADMIN,
        users.c.active.is_(True),
        users.c.id != user_id,
    )
    return int((await conn.execute(query)).scalar_one())


async def change_user(
    conn: AsyncConnection,
    company_id: int,
    user_id: int,
    *,
    actor: Principal | None,
    role: str | None = None,
    active: bool | None = None,
) -> dict[str, Any]:
    """Change a user's role and/or whether they are active; the user as it is now."""
    await lock_company(conn, company_id)  # one change at a time: the last admin stays
    user = await get_user(conn, company_id, user_id)
    if role is not None:
        role = check_role(role)
        may_grant(actor, role)
    if actor is not None and actor.role != ADMIN and user["role"] == ADMIN:
        raise Forbidden("only an administrator can change or deactivate an administrator")
    if active is False and actor is not None and actor.user_id == user_id:
        raise Conflict("you cannot deactivate yourself; ask another administrator", field="active")
    losing_admin = user["role"] == ADMIN and user["status"] != "deactivated"
    losing_admin = losing_admin and ((role is not None and role != ADMIN) or active is False)
    if losing_admin and await _other_active_admins(conn, company_id, user_id) == 0:
        raise Conflict(
            f"{user['email']} is the company's last administrator: make another user an "
            "administrator first",
            field="role" if active is not False else "active",
        )
    if role is not None and role != user["role"]:
        await conn.execute(update(users).where(users.c.id == user_id).values(role=role))
    if active is False and user["status"] != "deactivated":
        await deactivate_user(conn, company_id, user_id)
        await conn.execute(delete(invitations).where(invitations.c.user_id == user_id))
    if active is True and user["status"] == "deactivated":
        await check_user_seat(conn, company_id)
        await conn.execute(update(users).where(users.c.id == user_id).values(active=True))
    return await get_user(conn, company_id, user_id)


async def find_user_by_email(conn: AsyncConnection, email: str) -> tuple[int, int]:
    """(company id, user id) of the user with this login email; for the CLI."""
    query = select(users.c.company_id, users.c.id).where(users.c.email == email.strip().lower())
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"no user has the email {email}", field="email")
    return int(row.company_id), int(row.id)
