"""The PostgreSQL hits writer: one raw asyncpg connection, one COPY per batch.

COPY is a single statement, so a batch commits (and, with the default
``synchronous_commit=on``, is flushed to the WAL) as a whole or not at all. It runs on
the event loop: asyncpg never blocks it, and no thread hand-off is needed.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from mailbeacon.recorder.batch import GroupCommit, Hit
from mailbeacon.recorder.columns import HIT_COLUMNS, stored_rows


def asyncpg_dsn(url: str) -> str:
    """`postgresql+asyncpg://...` or `postgres://...` as a DSN asyncpg accepts."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresRecorder(GroupCommit):
    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(**options)
        self.dsn = asyncpg_dsn(url)
        self._conn: asyncpg.Connection | None = None

    async def _open(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, timeout=5)

    async def _write(self, hits: list[Hit]) -> None:
        conn = self._conn
        if conn is None or conn.is_closed():
            raise ConnectionError("not connected")
        if not hits:
            await conn.execute("SELECT 1")
            return
        rows = stored_rows(hits, self.anonymize_ip)
        await conn.copy_records_to_table("hits", records=rows, columns=HIT_COLUMNS, timeout=10)

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close(timeout=2)
