"""The few statements that differ between SQLite and PostgreSQL, in one place.

Named counters in `cursors` and ``INSERT ... ON CONFLICT`` need the dialect's own
insert construct; bulk inserts take the driver's fast paths. (Leases: `store.stages`.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store import now
from mailbeacon.store.schema import cursors


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/update` for this connection's engine."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def db_time(conn: AsyncConnection, value: dt.datetime | None) -> Any:
    """A datetime as `insert_rows` passes it to the driver: on SQLite the text SQLAlchemy
    stores (microseconds always written, so stored times compare as text); as is on
    PostgreSQL. Format once per batch, not per row."""
    if value is None or conn.dialect.name != "sqlite":
        return value
    return value.isoformat(" ", "microseconds")


_INSERTS: dict[tuple[str, str, tuple[str, ...], bool], str] = {}


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    *,
    skip_conflicts: bool = False,
) -> None:
    """Insert rows (tuples in `columns` order, datetimes through `db_time`) without
    SQLAlchemy's per-row parameter processing, which costs more than the database's own
    work for these narrow rows. SQLite: an executemany of one prepared statement.
    PostgreSQL: one statement, the columns as arrays (``SELECT * FROM unnest(...)``),
    where an executemany would still execute once per row on the server."""
    if not rows:
        return
    dialect = conn.dialect
    key = (dialect.name, table.name, tuple(columns), skip_conflicts)
    sql = _INSERTS.get(key)
    if sql is None:
        quote = dialect.identifier_preparer.quote
        if dialect.name == "postgresql":
            arrays = ", ".join(
                f"${i + 1}::{table.c[name].type.compile(dialect=dialect)}[]"
                for i, name in enumerate(columns)
            )
            values = f"SELECT * FROM unnest({arrays})"
        else:
            values = f"VALUES ({', '.join('?' for _ in columns)})"
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) {values}"
        if skip_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        _INSERTS[key] = sql
    if dialect.name == "postgresql":
        await conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*rows, strict=True)))
    else:
        await conn.exec_driver_sql(sql, rows)


async def add_scores(conn: AsyncConnection, points: dict[tuple[int, int], int]) -> None:
    """`leads.score += points` for {(lead id, company id): points}: one set-based UPDATE on
    PostgreSQL, an executemany by primary key on SQLite; in lead order (lock order)."""
    if not points:
        return
    keys = sorted(points)
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(
            "UPDATE leads SET score = leads.score + v.points"
            " FROM unnest($1::int[], $2::int[], $3::int[]) AS v(id, company_id, points)"
            " WHERE leads.id = v.id AND leads.company_id = v.company_id",
            ([k[0] for k in keys], [k[1] for k in keys], [points[k] for k in keys]),
        )
    else:
        await conn.exec_driver_sql(
            "UPDATE leads SET score = score + ? WHERE id = ? AND company_id = ?",
            [(points[k], k[0], k[1]) for k in keys],
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
