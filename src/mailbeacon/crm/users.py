"""Users, their passwords, their API keys and the end of their dashboard sessions.

Passwords are hashed with argon2. An API key is shown once, at creation: the database
keeps only its SHA-256 (the key is 32 random bytes, so a slow hash adds nothing but
latency to every request) and a short public prefix to find the row. A user's
`session_epoch` is written into each session cookie; logging out, deactivation and a
new password raise it, which ends every session issued before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import Role
from mailbeacon.crm.errors import Conflict, Invalid, NotFound
from mailbeacon.crm.limits import check_user_seat
from mailbeacon.store import now
from mailbeacon.store.schema import api_keys, companies, users

_hasher = PasswordHasher()
# Verifying against this when the email is unknown keeps login timing uniform.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the authenticated user, their company, role and plan."""

    user_id: int
    company_id: int
    role: str
    plan: str
    email: str


def normalize_email(email: str, field: str = "email") -> str:
    try:
        # Lower-cased whole: one address, one lead, however a form capitalised it.
        return validate_email(
            email, check_deliverability=False, globally_deliverable=False, test_environment=True
        ).normalized.lower()
    except EmailNotValidError as e:
        raise Invalid(f"{field}: {e}", field=field) from None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters", field="password")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_user(
    conn: AsyncConnection,
    *,
    company_id: int,
    email: str,
    role: str,
    password: str | None = None,
    name: str | None = None,
) -> int:
    try:
        Role(role)
    except ValueError:
        raise Invalid(
            f"unknown role {role!r}; choose one of {', '.join(r.value for r in Role)}",
            field="role",
        ) from None
    email = normalize_email(email)
    if password is not None:
        _check_password(password)
    exists = await conn.execute(select(companies.c.id).where(companies.c.id == company_id))
    if exists.scalar() is None:
        raise NotFound(f"company {company_id} does not exist", field="company")
    taken = await conn.execute(select(users.c.id).where(users.c.email == email))
    if taken.scalar() is not None:
        raise Conflict(f"a user with email {email} already exists", field="email")
    await check_user_seat(conn, company_id)
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(users)
                .values(
                    company_id=company_id,
                    email=email,
                    name=name,
                    role=role,
                    password_hash=hash_password(password) if password else None,
                    active=True,
                    created_at=now(),
                )
                .returning(users.c.id)
            )
    except IntegrityError:
        raise Conflict(f"a user with email {email} already exists", field="email") from None
    return int(result.scalar_one())


async def create_api_key(conn: AsyncConnection, user_id: int, name: str | None = None) -> str:
    """A new key for the user; the only time the full key is ever seen."""
    row = (
        await conn.execute(select(users.c.company_id, users.c.active).where(users.c.id == user_id))
    ).first()
    if row is None:
        raise NotFound(f"user {user_id} does not exist", field="user")
    if not row.active:
        raise Conflict(f"user {user_id} is deactivated: a key of theirs would never work")
    if name is not None and (len(name) > 100 or any(ord(c) < 32 for c in name)):
        raise Invalid("name: at most 100 characters, on one line", field="name")
    prefix = secrets.token_hex(6)
    key = f"mb_{prefix}_{secrets.token_urlsafe(32)}"
    await conn.execute(
        insert(api_keys).values(
            user_id=user_id,
            company_id=row.company_id,
            prefix=prefix,
            key_hash=_key_hash(key),
            name=(name or "").strip() or None,
            created_at=now(),
        )
    )
    return key


KEY_FIELDS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)


async def list_api_keys(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    """The user's keys, newest first (never the key itself: only its prefix)."""
    query = select(*KEY_FIELDS).where(api_keys.c.user_id == user_id).order_by(api_keys.c.id.desc())
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def revoke_own_api_key(conn: AsyncConnection, user_id: int, key_id: int) -> None:
    """Revoke one of the user's keys; requests with it get 401 from the next one on.
    Another user's key (of any company) is 404, and so is one revoked already."""
    result = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.user_id == user_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now())
    )
    if result.rowcount == 0:
        raise NotFound(f"API key {key_id} does not exist or is revoked already")


async def revoke_api_key(conn: AsyncConnection, prefix: str) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    return result.rowcount > 0


_PRINCIPAL_COLUMNS = (users.c.id, users.c.company_id, users.c.role, users.c.email, companies.c.plan)


def _principal(row: Any) -> Principal:
    return Principal(
        user_id=row.id, company_id=row.company_id, role=row.role, plan=row.plan, email=row.email
    )


async def authenticate_key(conn: AsyncConnection, key: str) -> Principal | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "mb":
        return None
    row = (
        await conn.execute(
            select(api_keys.c.key_hash, *_PRINCIPAL_COLUMNS)
            .join(users, users.c.id == api_keys.c.user_id)
            .join(companies, companies.c.id == users.c.company_id)
            .where(
                api_keys.c.prefix == parts[1],
                api_keys.c.revoked_at.is_(None),
                users.c.active.is_(True),
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, _key_hash(key)):
        return None
    return _principal(row)


async def authenticate_password(
    conn: AsyncConnection, email: str, password: str
) -> Principal | None:
    row = (
        await conn.execute(
            select(users.c.password_hash, *_PRINCIPAL_COLUMNS)
            .join(companies, companies.c.id == users.c.company_id)
            .where(users.c.email == email.strip().lower(), users.c.active.is_(True))
        )
    ).first()
    if not verify_password(row.password_hash if row else None, password) or row is None:
        return None
    return _principal(row)


async def get_principal(conn: AsyncConnection, user_id: int) -> Principal | None:
    row = (
        await conn.execute(
            select(*_PRINCIPAL_COLUMNS)
            .join(companies, companies.c.id == users.c.company_id)
            .where(users.c.id == user_id, users.c.active.is_(True))
        )
    ).first()
    return _principal(row) if row else None


async def get_session_principal(
    conn: AsyncConnection, user_id: int, epoch: int
) -> Principal | None:
    """The user of a dashboard session, if they are active and the session's epoch is
    still theirs (no logout, deactivation or password change since it began)."""
    row = (
        await conn.execute(
            select(*_PRINCIPAL_COLUMNS)
            .join(companies, companies.c.id == users.c.company_id)
            .where(
                users.c.id == user_id,
                users.c.active.is_(True),
                users.c.session_epoch == epoch,
            )
        )
    ).first()
    return _principal(row) if row else None


async def session_epoch(conn: AsyncConnection, user_id: int) -> int:
    """The epoch a new session of the user carries."""
    row = await conn.execute(select(users.c.session_epoch).where(users.c.id == user_id))
    epoch = row.scalar()
    if epoch is None:
        raise NotFound(f"user {user_id} does not exist")
    return int(epoch)


async def end_sessions(conn: AsyncConnection, user_id: int) -> None:
    """End every dashboard session of the user (logout: on every device at once)."""
    await conn.execute(
        update(users).where(users.c.id == user_id).values(session_epoch=users.c.session_epoch + 1)
    )


async def set_password(conn: AsyncConnection, user_id: int, password: str) -> None:
    """A new password; the sessions begun with the old one end."""
    _check_password(password)
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(password_hash=hash_password(password), session_epoch=users.c.session_epoch + 1)
    )
    if result.rowcount == 0:
        raise NotFound(f"user {user_id} does not exist")


async def deactivate_user(conn: AsyncConnection, company_id: int, user_id: int) -> None:
    """The user can no longer sign in, and their open sessions and API keys stop now.

    Every request reads `users.active` and the session epoch (nothing is cached), so the
    next one is a 401. The keys are revoked as well, so reactivating the user later does
    not bring back a key that may have leaked meanwhile.
    """
    result = await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.company_id == company_id)
        .values(active=False, session_epoch=users.c.session_epoch + 1)
    )
    if result.rowcount == 0:
        raise NotFound(f"user {user_id} does not exist")
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now())
    )
