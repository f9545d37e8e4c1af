"""Workers divide the partitions between them and take over a dead worker's share."""

from __future__ import annotations

import asyncio

from mailbeacon.pipeline.partitions import Partitions
from mailbeacon.settings import Settings
from mailbeacon.store import Database


async def _settle(*workers: Partitions) -> None:
    """Rebalance each a few times, handing back what is over the fair share."""
    for _ in range(3):
        for w in workers:
            _, extra = await w.rebalance()
            for p in extra:
                await w.release(p)


async def test_workers_share_the_partitions_and_take_over_a_dead_ones(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, partitions=8, partition_lease_seconds=1.0)
    db = Database(pg_url)
    try:
        a, b, c = (Partitions(db, settings, name) for name in "abc")
        await a.rebalance()
        assert a.owned == set(range(8))  # alone: everything

        await _settle(a, b, c)
        shares = [a.owned, b.owned, c.owned]
        assert sorted(len(s) for s in shares) == [2, 3, 3]
        assert set().union(*shares) == set(range(8))
        assert sum(len(s) for s in shares) == 8  # no partition read by two workers

        dead = set(c.owned)  # c is killed: it stops renewing anything
        await asyncio.sleep(1.2)
        await _settle(a, b)
        assert a.owned.isdisjoint(b.owned)
        assert a.owned | b.owned == set(range(8))
        assert dead <= a.owned | b.owned
        assert sorted([len(a.owned), len(b.owned)]) == [4, 4]

        await b.release_all()  # a clean stop hands over at once, without waiting
        await a.rebalance()
        assert a.owned == set(range(8))
    finally:
        await db.dispose()


async def test_a_live_holder_keeps_its_partitions(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, partitions=4, partition_lease_seconds=1.0)
    db = Database(pg_url)
    try:
        a, b = Partitions(db, settings, "a"), Partitions(db, settings, "b")
        await a.rebalance()
        for _ in range(4):  # b wants its share, but a renews in time: b waits for a hand-back
            await asyncio.sleep(0.3)
            await a.rebalance()  # (without releasing what is over its share)
            await b.rebalance()
            assert a.owned.isdisjoint(b.owned)
        assert len(a.owned) + len(b.owned) == 4
    finally:
        await db.dispose()
