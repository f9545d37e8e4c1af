"""The few statements that differ between SQLite and PostgreSQL, in one place.

Leases (one process of several runs a stage), named counters in `cursors`, and
``INSERT ... ON CONFLICT`` all need the dialect's own insert construct.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store import now
from mailbeacon.store.schema import cursors, leases


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/update` for this connection's engine."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


async def hold_lease(conn: AsyncConnection, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease `name`; True if `holder` has it until now + ttl."""
    at = now()
    stmt = dialect_insert(conn, leases).values(
        name=name, holder=holder, expires_at=at + dt.timedelta(seconds=ttl)
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=(leases.c.holder == holder) | (leases.c.expires_at < at),
    )
    result = await conn.execute(stmt)
    return result.rowcount == 1


async def release_lease(conn: AsyncConnection, name: str, holder: str) -> None:
    await conn.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(expires_at=now() - dt.timedelta(seconds=1))
    )


async def read_counter(conn: AsyncConnection, name: str) -> int:
    """A row of `cursors`, created at 0 the first time it is read."""
    value = (await conn.execute(select(cursors.c.position).where(cursors.c.name == name))).scalar()
    if value is not None:
        return int(value)
    await conn.execute(
        dialect_insert(conn, cursors)
        .values(name=name, position=0, updated_at=now())
        .on_conflict_do_nothing(index_elements=[cursors.c.name])
    )
    return 0


async def move_counter(conn: AsyncConnection, name: str, old: int, new: int) -> bool:
    """Compare-and-set: False if another process moved it first (the caller rolls back)."""
    result = await conn.execute(
        update(cursors)
        .where(cursors.c.name == name, cursors.c.position == old)
        .values(position=new, updated_at=now())
    )
    return result.rowcount == 1


async def bump_counter(conn: AsyncConnection, name: str) -> None:
    await read_counter(conn, name)
    await conn.execute(
        update(cursors)
        .where(cursors.c.name == name)
        .values(position=cursors.c.position + 1, updated_at=now())
    )
