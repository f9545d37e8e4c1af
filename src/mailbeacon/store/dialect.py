"""INSERT ... ON CONFLICT for whichever engine a connection talks to.

SQLite and PostgreSQL both spell `on_conflict_do_nothing/update` the same way, but
each needs its own dialect's `insert` construct: this picks it, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/update` for this connection's engine."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def one_of(conn: AsyncConnection, column: Any, values: Iterable[int]) -> Any:
    """`column IN (values)` for a batch's worth of integer ids.

    On PostgreSQL it is `column = ANY(:array)`: one statement text whatever the number
    of ids, so asyncpg prepares it once. `IN (...)` renders a bind parameter per id,
    a new statement for every batch size, and was most of enrich's time per batch in
    the multi-machine mode (4,000-hit batches).
    """
    ids = list(values)
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=postgresql.ARRAY(BigInteger())))
    return column.in_(ids)
