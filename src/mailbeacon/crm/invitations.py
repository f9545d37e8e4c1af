"""Inviting a user by email: a seat, a role, and a link to set their first password.

`invite` makes the user (active, no password: they cannot sign in yet, and they take a
seat of the plan) and an invitation whose token only the email carries; the database
keeps its SHA-256. The link `/invite/{token}` lets them set a password, once, within
`VALID_FOR`; then the invitation is gone and they sign in like anyone. Inviting the
same address again, before they accept, replaces the token (the old link stops
working): that is how an invitation is resent. Deactivating the user voids it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Conflict, NotFound
from mailbeacon.crm.team import check_role, may_grant
from mailbeacon.crm.users import Principal, create_user, normalize_email, set_password
from mailbeacon.store import now
from mailbeacon.store.schema import companies, users
from mailbeacon.store.schema_users import invitations

VALID_FOR = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Invitation:
    user_id: int
    email: str
    token: str  # shown once, in the mail's link


@dataclass(frozen=True, slots=True)
class OpenInvitation:
    user_id: int
    email: str
    role: str
    company: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite(
    conn: AsyncConnection, who: Principal, email: str, role: str, name: str | None = None
) -> Invitation:
    """Invite `email` into `who`'s company with `role` (see the module docstring)."""
    role = check_role(role)
    may_grant(who, role)
    email = normalize_email(email)
    row = (
        await conn.execute(
            select(users.c.id, users.c.company_id, users.c.password_hash, users.c.active).where(
                users.c.email == email
            )
        )
    ).first()
    if row is None:
        user_id = await create_user(
            conn, company_id=who.company_id, email=email, role=role, name=name
        )
    elif row.company_id == who.company_id and row.password_hash is None and row.active:
        user_id = int(row.id)  # invited before and not accepted yet: a fresh link
        await conn.execute(delete(invitations).where(invitations.c.user_id == user_id))
    else:
        raise Conflict(f"a user with email {email} already exists", field="email")
    token = secrets.token_urlsafe(32)
    at = now()
    await conn.execute(
        insert(invitations).values(
            company_id=who.company_id,
            user_id=user_id,
            invited_by_user_id=who.user_id,
            token_hash=_hash(token),
            created_at=at,
            expires_at=at + VALID_FOR,
        )
    )
    return Invitation(user_id=user_id, email=email, token=token)


async def open_invitation(conn: AsyncConnection, token: str) -> OpenInvitation:
    """The invitation this link carries, if it is still open; NotFound otherwise."""
    row = (
        await conn.execute(
            select(invitations.c.user_id, users.c.email, users.c.role, companies.c.name)
            .join(users, users.c.id == invitations.c.user_id)
            .join(companies, companies.c.id == invitations.c.company_id)
            .where(
                invitations.c.token_hash == _hash(token),
                invitations.c.expires_at > now(),
                users.c.active.is_(True),
            )
        )
    ).first()
    if row is None:
        raise NotFound("this invitation link is not valid: it was used, replaced or has expired")
    return OpenInvitation(user_id=row.user_id, email=row.email, role=row.role, company=row.name)


async def accept(conn: AsyncConnection, token: str, password: str) -> OpenInvitation:
    """Set the invited user's first password; the link works no more."""
    found = await open_invitation(conn, token)
    await set_password(conn, found.user_id, password)
    await conn.execute(delete(invitations).where(invitations.c.user_id == found.user_id))
    return found
