"""The audit log: who erased or exported which lead, and when (GDPR articles 15 and 17).

Append-only by construction: this module has `record` and `entries`, nothing that
changes or removes a row, and the database refuses an UPDATE or DELETE on the table
(migration 0009). A lead is named by id and by the SHA-256 of their address, so the
entry outlives the erase without keeping the address: "did you erase x@y?" is answered
by hashing x@y (`email_sha256`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.schema import audit_log

Action = Literal["erase", "export"]
Via = Literal["api", "web", "cli"]
MAX_ENTRIES = 500


def email_sha256(email: str) -> str:
    """The hash an entry names the lead by: of the address as leads store it (lower case)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


async def record(
    conn: AsyncConnection, who: Principal, action: Action, lead: dict[str, Any], via: Via
) -> None:
    """Append one entry, in the caller's transaction: no erase or export without it."""
    await conn.execute(
        insert(audit_log).values(
            at=now(),
            company_id=who.company_id,
            user_id=who.user_id,
            user_email=who.email,
            action=action,
            lead_id=int(lead["id"]),
            lead_email_sha256=email_sha256(str(lead["email"])),
            via=via,
        )
    )


async def entries(
    conn: AsyncConnection,
    company_id: int,
    *,
    before: int | None = None,
    limit: int = 100,
    action: Action | None = None,
    email: str | None = None,
) -> list[dict[str, Any]]:
    """The company's entries, newest first; `before` an id for the next page; `email`
    finds the entries about one address (by its hash)."""
    query = select(audit_log).where(audit_log.c.company_id == company_id)
    if before is not None:
        query = query.where(audit_log.c.id < before)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if email is not None:
        query = query.where(audit_log.c.lead_email_sha256 == email_sha256(email))
    query = query.order_by(audit_log.c.id.desc()).limit(min(limit, MAX_ENTRIES + 1))
    return [dict(r) for r in (await conn.execute(query)).mappings()]
