"""The multi-machine mode end to end, with things dying under it (bench/cluster.py, shorter).

A NATS server, PostgreSQL, two edges (`mailbeacon serve --no-pipeline`) and three workers
(`mailbeacon pipeline`) over eight partitions, as docs/deploy.md runs them. Pixel and
click hits arrive over HTTP in three waves; between them a worker is killed with SIGKILL
(and started again), then the NATS server is killed with SIGKILL and started again, and
another worker is killed while the pipeline drains. At the end every invariant holds:
every answered hit in `hits` exactly once with its events, no duplicate event, each
lead's events in order, rollups equal to the naive GROUP BY, each rule fired exactly once
per lead.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbeacon.store import Database
from mailbeacon.store.schema import cursors
from testkit.cluster import (
    Installation,
    NatsServer,
    check,
    drained,
    drive,
    environment,
    plan_for,
    seed,
    stream_ends,
)

pytestmark = pytest.mark.slow
PARTITIONS = 8


async def _wait_drained(db: Database, nats: NatsServer, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ends = await stream_ends(nats.url, "MAILBEACON_HITS", PARTITIONS)
        if await drained(db, ends):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the pipeline did not drain in {timeout} s")


async def test_no_hit_is_lost_or_doubled_while_workers_and_nats_die(
    pg_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    world = await seed(pg_url, 900)
    rng = random.Random(15)
    work = [(r, plan_for(r, rng)) for r in world.readers]
    waves = [work[i::3] for i in range(3)]
    inst = Installation(environment(pg_url, nats_server.url, PARTITIONS, lease="1"), tmp_path)
    db = Database(pg_url)
    try:
        ports = [inst.start_edge(), inst.start_edge()]
        for _ in range(3):
            inst.start_worker()
        answered = []

        load = await drive(ports, waves[0], 12, 0)
        answered += load.answered
        inst.kill_worker(0)  # SIGKILL, mid-stream: its partitions must move
        inst.start_worker(0)

        load = await drive(ports, waves[1], 12, 1_000_000)
        answered += load.answered
        nats_server.crash_restart()  # SIGKILL: what JetStream acknowledged must survive

        load = await drive(ports, waves[2], 12, 2_000_000)
        answered += load.answered
        inst.kill_worker(1)
        inst.start_worker(1)

        await _wait_drained(db, nats_server)
        verdict = await check(db, world, answered)
        assert verdict.ok, "\n".join(verdict.lines())
        assert verdict.answered >= 0.9 * sum(len(v) for _, v in work)  # most got through
        async with db.connect() as conn:
            partitions = (
                await conn.execute(select(cursors.c.name).where(cursors.c.name.like("enrich:p%")))
            ).scalars()
            assert len(set(partitions)) == PARTITIONS  # every partition was read
    finally:
        inst.stop()
        await db.dispose()
