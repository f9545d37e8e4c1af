"""The PostgreSQL hits writer: one raw asyncpg connection, one COPY per batch.

COPY is a single statement, so a batch commits (and, with the default
``synchronous_commit=on``, is flushed to the WAL) as a whole or not at all. It runs on
the event loop: asyncpg never blocks it, and no thread hand-off is needed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from mailbeacon.recorder.batch import GroupCommit, Hit, values

COLUMNS = (
    "at",
    "kind",
    "company_id",
    "message_id",
    "lead_id",
    "link_index",
    "ip",
    "user_agent",
    "accept_language",
    "method",
)
_EPOCH = dt.datetime(1970, 1, 1)


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
        anon = self.anonymize_ip
        rows = [(_EPOCH + dt.timedelta(seconds=h.at), *values(h, anon)) for h in hits]
        await conn.copy_records_to_table("hits", records=rows, columns=COLUMNS, timeout=10)

    async def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close(timeout=2)
