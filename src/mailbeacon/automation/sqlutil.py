"""Statements that differ between SQLite and PostgreSQL: bulk inserts through the
driver's fast paths, set-based score updates, and the rules-version counter.
(Leases and cursors: `store.stages`; INSERT ... ON CONFLICT: `store.dialect`.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store import now
from mailbeacon.store.schema import cursors
from mailbeacon.store.stages import read_cursor


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


async def bump_counter(conn: AsyncConnection, name: str) -> None:
    await read_cursor(conn, name)
    await conn.execute(
        update(cursors)
        .where(cursors.c.name == name)
        .values(position=cursors.c.position + 1, updated_at=now())
    )
