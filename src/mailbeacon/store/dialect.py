"""INSERT ... ON CONFLICT for whichever engine a connection talks to.

SQLite and PostgreSQL both spell `on_conflict_do_nothing/update` the same way, but
each needs its own dialect's `insert` construct: this picks it, in one place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    """`insert(table)` with `.on_conflict_do_nothing/update` for this connection's engine."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)
