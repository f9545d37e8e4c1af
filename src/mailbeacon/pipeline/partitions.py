"""Which worker reads which partition: leases in PostgreSQL, shared out evenly.

Every worker renews a heartbeat lease (`pipeline-worker:<holder>`) and counts the live
ones; its fair share is ceil(P / live workers). It renews the partitions it holds, takes
free or expired ones up to its share and hands back any above it (after the partition's
current batch is committed, by the caller). A worker that dies stops renewing: its
partitions' leases lapse after `partition_lease_seconds` and the others take them.

The lease is what keeps two workers off one partition in normal operation; the
partition's checkpoint, moved by compare-and-set in the same transaction as the batch's
writes (`pipeline.cluster`), is what keeps a paused worker that lost its lease from
writing anything after the new owner started.
"""

from __future__ import annotations

import datetime as dt
import math
import random

from sqlalchemy import delete, func, select

from mailbeacon.settings import Settings
from mailbeacon.store import stages as lease
from mailbeacon.store.db import Database, now
from mailbeacon.store.schema import leases

WORKER_PREFIX = "pipeline-worker:"
FORGET_DEAD_WORKERS_S = 300  # a dead worker's heartbeat row is deleted after this


def partition_lease(partition: int) -> str:
    return f"enrich-partition:{partition}"


class Partitions:
    """This worker's share of the partitions (see the module docstring)."""

    def __init__(self, db: Database, settings: Settings, holder: str) -> None:
        self.db, self.holder = db, holder
        self.count = settings.partitions
        self.seconds = settings.partition_lease_seconds
        self.owned: set[int] = set()
        self.live_workers = 1

    async def rebalance(self) -> tuple[set[int], set[int]]:
        """Renew and claim; the partitions to read now, and those to hand back."""
        await lease.acquire(self.db, WORKER_PREFIX + self.holder, self.holder, self.seconds)
        self.live_workers = max(1, await self._live_workers())
        share = math.ceil(self.count / self.live_workers)
        for p in sorted(self.owned):
            if not await lease.acquire(self.db, partition_lease(p), self.holder, self.seconds):
                self.owned.discard(p)  # lapsed while we were slow: someone else has it
        free = [p for p in range(self.count) if p not in self.owned]
        random.shuffle(free)  # workers starting together do not all try partition 0 first
        for p in free:
            if len(self.owned) >= share:
                break
            if await lease.acquire(self.db, partition_lease(p), self.holder, self.seconds):
                self.owned.add(p)
        extra = set(sorted(self.owned)[share:]) if len(self.owned) > share else set()
        return self.owned - extra, extra

    async def release(self, partition: int) -> None:
        self.owned.discard(partition)
        await lease.release(self.db, partition_lease(partition), self.holder)

    async def release_all(self) -> None:
        for p in list(self.owned):
            await self.release(p)
        await lease.release(self.db, WORKER_PREFIX + self.holder, self.holder)

    async def _live_workers(self) -> int:
        t = now()
        async with self.db.begin() as conn:
            await conn.execute(
                delete(leases).where(
                    leases.c.name.like(WORKER_PREFIX + "%"),
                    leases.c.expires_at < t - dt.timedelta(seconds=FORGET_DEAD_WORKERS_S),
                )
            )
            live = await conn.scalar(
                select(func.count()).where(
                    leases.c.name.like(WORKER_PREFIX + "%"), leases.c.expires_at > t
                )
            )
        return int(live or 0)
