"""Pipeline stages' bookkeeping: how far a stage has read (cursor), which process runs
it (lease).

Several `serve` workers (or machines) each start every stage (enrich, rollups,
automation, campaign sends); the one holding an unexpired lease row runs it, the others
wait and take over when it stops renewing.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from typing import Any

from sqlalchemy import Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.db import Database, now
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema import cursors, leases

LEASE_SECONDS = 10.0


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def insert_ignore(conn: AsyncConnection, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either engine."""
    return dialect_insert(conn, table).on_conflict_do_nothing()


async def acquire(db: Database, name: str, holder: str, seconds: float = LEASE_SECONDS) -> bool:
    """Take or renew the lease; False when another live holder has it."""
    t = now()
    async with db.begin() as conn:
        await conn.execute(
            insert_ignore(conn, leases).values(name=name, holder=holder, expires_at=t)
        )
        result = await conn.execute(
            update(leases)
            .where(leases.c.name == name)
            .where(or_(leases.c.holder == holder, leases.c.expires_at <= t))
            .values(holder=holder, expires_at=t + dt.timedelta(seconds=seconds))
        )
        return result.rowcount == 1


async def release(db: Database, name: str, holder: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(leases)
            .where(leases.c.name == name, leases.c.holder == holder)
            .values(expires_at=dt.datetime(1970, 1, 1))
        )


async def read_cursor(conn: AsyncConnection, name: str, *, commit: bool = False) -> int:
    """A row of `cursors`, created at 0 the first time it is read. Reading an existing
    row writes nothing, so an idle stage does not take SQLite's write lock.

    `commit`: the caller reads on `db.connect()` (no `begin()` block, whose end would
    commit), so a row created here is committed at once instead of rolled back.
    """
    position = await conn.scalar(select(cursors.c.position).where(cursors.c.name == name))
    if position is not None:
        return int(position)
    await conn.execute(insert_ignore(conn, cursors).values(name=name, position=0, updated_at=now()))
    if commit:
        await conn.commit()
    return 0


async def lock_cursor(conn: AsyncConnection, name: str) -> int:
    """Take a stage's write lock by touching its cursor row (created if need be), then
    read the position: the stage's own writes wait until this transaction ends."""
    await read_cursor(conn, name)
    await conn.execute(update(cursors).where(cursors.c.name == name).values(updated_at=now()))
    return int(await conn.scalar(select(cursors.c.position).where(cursors.c.name == name)))


async def move_cursor(conn: AsyncConnection, name: str, old: int, new: int) -> bool:
    """Advance only from where we read it: a second runner's write makes this fail."""
    result = await conn.execute(
        update(cursors)
        .where(cursors.c.name == name, cursors.c.position == old)
        .values(position=new, updated_at=now())
    )
    return result.rowcount == 1
