"""The database handle: one async SQLAlchemy engine, SQLite or PostgreSQL.

SQLite runs in WAL mode with a busy timeout so several processes (``serve --workers``)
and the pipeline can share one file; PostgreSQL is the store for several machines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool


def now() -> dt.datetime:
    """Naive UTC: the one clock format stored everywhere."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def async_url(url: str) -> str:
    """Map the user-facing URL (``sqlite:///...``, ``postgresql://...``) to an async driver."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        return str(u.set(drivername="sqlite+aiosqlite"))
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        return u.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    return u.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """Owns the engine. Pass it in; never reach for a global."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = make_url(url).drivername.startswith("sqlite")
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_sqlite:
            # aiosqlite gives each connection its own thread; a small pool of them is
            # enough, and NullPool would reopen the file (and re-run pragmas) per query.
            self.engine: AsyncEngine = create_async_engine(async_url(url), pool_size=pool_size)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(
                async_url(url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True
            )

    @classmethod
    def unpooled(cls, url: str) -> Database:
        db = cls.__new__(cls)
        db.url = url
        db.is_sqlite = make_url(url).drivername.startswith("sqlite")
        db.engine = create_async_engine(async_url(url), poolclass=NullPool)
        if db.is_sqlite:
            event.listen(db.engine.sync_engine, "connect", _sqlite_pragmas)
        return db

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (autobegin; nothing is committed)."""
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
