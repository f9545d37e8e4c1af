"""Shared fixtures: real databases (SQLite and PostgreSQL), migrated fresh for each test.

`db_url` is parametrised over both engines. PostgreSQL tests get their own database,
created per test session, so several test runs on one machine never share tables.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from testkit.pg import reset_schema

# Properties are about answers, not speed: a loaded CI machine must not fail a property
# because one example took longer than hypothesis's default 200 ms (benchmarks time things).
hypothesis_settings.register_profile("mailbeacon", deadline=None)
hypothesis_settings.load_profile("mailbeacon")

PG_ADMIN_DSN = os.environ.get("MAILBEACON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
TEST_KEYS = (("t1", b"test-secret-one"), ("t0", b"test-secret-old"))


def _pg_admin(sql: str) -> None:
    """Run one statement on the admin database, on a thread of its own: session fixtures
    may be first requested from inside the running test loop."""

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One throwaway PostgreSQL database for this test session."""
    name = f"mb_test_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database URL: SQLite in tmp_path, or a clean PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'mailbeacon.db'}"
    else:
        url = request.getfixturevalue("pg_database")
        await reset_schema(url)
    db = Database.unpooled(url)
    await upgrade(db)
    await db.dispose()
    yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    """SQLite only, for tests about behaviour that does not depend on the engine."""
    url = f"sqlite:///{tmp_path / 'mailbeacon.db'}"
    db = Database.unpooled(url)
    await upgrade(db)
    await db.dispose()
    yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        database_url=db_url,
        base_url="http://127.0.0.1:8000",
        secret_keys=TEST_KEYS,
        var_dir=tmp_path / "var",
    )
