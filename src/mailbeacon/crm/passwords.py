"""Resetting a user's password (`mailbeacon user password EMAIL`): for the person who
forgot theirs, from the server's command line."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Invalid, NotFound
from mailbeacon.crm.users import hash_password, normalize_email
from mailbeacon.store.schema import users

MIN_LENGTH = 8


async def set_password(conn: AsyncConnection, email: str, password: str) -> None:
    """Set the password of the user with this email and end every session they have
    (a reset is often because someone else may know the old one)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"password must be at least {MIN_LENGTH} characters", field="password")
    address = normalize_email(email)
    result = await conn.execute(
        update(users)
        .where(users.c.email == address)
        .values(password_hash=hash_password(password), session_epoch=users.c.session_epoch + 1)
    )
    if result.rowcount == 0:
        raise NotFound(f"no user has the email {address}", field="email")
