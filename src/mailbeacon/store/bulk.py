"""Bulk event writes on PostgreSQL by COPY, idempotent like the row INSERT they replace.

COPY cannot say ON CONFLICT, so the rows are COPYed into a temporary table (dropped at
commit) and moved with one INSERT ... SELECT ... ON CONFLICT DO NOTHING: a re-run of a
batch never doubles an event (`uq_events_hit_type`). The INSERT takes the rows in the
order given, so event ids keep the order of the hits, as the stages reading events by
id expect. It runs in the caller's transaction, beside its cursor move.

On SQLite (or with a few rows, where the temporary table costs more than it saves)
`insert_events` falls back to the executemany INSERT ... ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema import events

# Every column but the id, which the INSERT draws from the table's sequence.
COLUMNS: tuple[str, ...] = tuple(c.name for c in events.c if c.name != "id")
# Python-side defaults of the table (the server has none for these): a row may omit them.
_DEFAULTS: dict[str, Any] = {
    c.name: c.default.arg
    for c in events.c
    if c.default is not None and c.default.is_scalar and c.name != "id"
}
# Below this many rows the executemany INSERT is as fast (measured: no gain at 100 rows a
# transaction, about +30% at 1000) and creates no temporary table.
COPY_MIN_ROWS = 500
_TEMP = "events_incoming"


def _record(row: Mapping[str, Any], n: int) -> tuple[Any, ...]:
    return (n, *(row.get(c, _DEFAULTS.get(c)) for c in COLUMNS))


async def copy_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert `rows` (dicts of `events` columns, no id) on PostgreSQL by COPY, skipping
    any whose (hit_id, type, at) is already there; the number of rows inserted. Runs in
    `conn`'s transaction (begun here if it was not)."""
    if not rows:
        return 0
    if conn.dialect.name != "postgresql":
        raise ValueError("copy_events needs PostgreSQL; use insert_events")
    cols = ", ".join(COLUMNS)
    # Through SQLAlchemy first: it begins the transaction the raw COPY then joins.
    await conn.execute(
        text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_TEMP} ON COMMIT DROP AS"
             f" SELECT 0::bigint AS n, {cols} FROM events WITH NO DATA")
    )  # fmt: skip
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table(
        _TEMP, records=[_record(r, n) for n, r in enumerate(rows)], columns=("n", *COLUMNS)
    )
    result = await conn.execute(
        text(f"INSERT INTO events ({cols}) SELECT {cols} FROM {_TEMP} ORDER BY n"
             " ON CONFLICT DO NOTHING")
    )  # fmt: skip
    # Emptied, not dropped: a second batch in the same transaction reuses the table.
    await conn.execute(text(f"TRUNCATE {_TEMP}"))
    return result.rowcount or 0


async def insert_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
    """`copy_events` on PostgreSQL for a batch worth it, else the executemany INSERT ...
    ON CONFLICT DO NOTHING; the number of rows inserted (the fallback's count may be an
    estimate on drivers that do not report executemany row counts)."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return await copy_events(conn, rows)
    whole = [{c: r.get(c, _DEFAULTS.get(c)) for c in COLUMNS} for r in rows]  # same keys
    result = await conn.execute(dialect_insert(conn, events).on_conflict_do_nothing(), whole)
    return max(result.rowcount or 0, 0)
