"""The one stage runner (`mailbeacon.pipeline.runner`) on both engines: one lease
holder at a time, take-over after a dead holder's lease lapses, a failing batch logged
once per streak, the lease renewed at half its life and released on stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store import stages as leases
from mailbeacon.store.schema import leases as lease_rows

NAME = "test-stage"


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return settings.with_(pipeline_lease_seconds=1.0, pipeline_retry_seconds=0.1)


def counting(log: list[str], who: str, every: float = 0.0) -> Callable[..., Awaitable[int]]:
    """A batch that records who ran it; `every` seconds of work each time."""

    async def batch(db: Database, settings: Settings) -> int:
        log.append(who)
        await asyncio.sleep(every)
        return 0  # idle: rest `poll`

    return batch


def start(
    batch: Callable[..., Awaitable[int]], db: Database, settings: Settings, stop: asyncio.Event,
    poll: float = 0.02,
) -> asyncio.Task[None]:  # fmt: skip
    return asyncio.create_task(run_stage(Stage(NAME, batch, poll=poll), db, settings, stop))


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def expiry(db: Database) -> tuple[str, object]:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(lease_rows.c.holder, lease_rows.c.expires_at).where(
                    lease_rows.c.name == NAME
                )
            )
        ).one()
    return row.holder, row.expires_at


async def test_two_runners_one_lease_only_one_runs_batches(db: Database, quick: Settings) -> None:
    ran: list[str] = []
    stop = asyncio.Event()
    tasks = [start(counting(ran, who), db, quick, stop) for who in ("a", "b")]
    await until(lambda: len(ran) >= 20)
    await asyncio.sleep(1.5)  # past a renewal or two: the holder keeps it
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(set(ran)) == 1, f"both ran batches: {sorted(set(ran))}"
    assert len(ran) > 40


async def test_a_dead_runners_lease_is_taken_over_after_it_lapses(
    db: Database, quick: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    a = start(counting(ran, "a"), db, quick, stop_a)
    await until(lambda: "a" in ran)

    async def no_release(*_: object) -> None:  # killed with -9: nothing is released
        return None

    monkeypatch.setattr(leases, "release", no_release)
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    _, lapses = await expiry(db)
    monkeypatch.undo()

    b_started: list[object] = []

    async def b_batch(db: Database, settings: Settings) -> int:
        if not b_started:
            b_started.append(now())
        return 0

    b = start(b_batch, db, quick, stop_b)
    await until(lambda: bool(b_started))
    assert b_started[0] >= lapses  # not before the dead holder's lease ran out
    stop_b.set()
    await asyncio.wait_for(b, 10)


async def test_a_failing_batch_is_logged_once_per_streak_and_the_runner_goes_on(
    db: Database, quick: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # fail, fail, fail, work, fail, fail, work, work...
    plan = [False, False, False, True, False, False]
    calls: list[bool] = []

    async def flaky(db: Database, settings: Settings) -> int:
        ok = plan[len(calls)] if len(calls) < len(plan) else True
        calls.append(ok)
        if not ok:
            raise RuntimeError("the database went away")
        return 0

    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="mailbeacon.pipeline"):
        task = start(flaky, db, quick, stop)
        await until(lambda: len(calls) >= len(plan) + 3)
        stop.set()
        await asyncio.wait_for(task, 10)
    failed = [r for r in caplog.records if "batch failed" in r.getMessage()]
    again = [r for r in caplog.records if "working again" in r.getMessage()]
    assert len(failed) == 2 and all(r.exc_info for r in failed)
    assert [r.getMessage() for r in again] == [
        f"stage {NAME}: working again after 3 failures",
        f"stage {NAME}: working again after 2 failures",
    ]


async def test_stop_releases_the_lease(db: Database, quick: Settings) -> None:
    ran: list[str] = []
    stop = asyncio.Event()
    task = start(counting(ran, "a"), db, quick, stop)
    await until(lambda: bool(ran))
    assert not await leases.acquire(db, NAME, "someone else")  # held meanwhile
    stop.set()
    await asyncio.wait_for(task, 10)
    assert await leases.acquire(db, NAME, "someone else")  # at once, not after it lapses


async def test_the_lease_is_renewed_at_half_its_life_not_every_poll(
    db: Database, quick: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []
    real = leases.acquire

    async def counted(*args: object, **kw: object) -> bool:
        asked.append(time.monotonic())
        return await real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(leases, "acquire", counted)
    ran: list[str] = []
    stop = asyncio.Event()
    task = start(counting(ran, "a"), db, quick, stop, poll=0.01)
    await asyncio.sleep(2.2)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(ran) > 50  # polled every 10 ms
    assert 3 <= len(asked) <= 6  # a 1 s lease: taken, then renewed about every 0.5 s


async def test_a_long_batch_keeps_its_lease(db: Database, quick: Settings) -> None:
    """A batch longer than the lease renews it on the side: no one else takes it."""
    ran: list[str] = []
    stop = asyncio.Event()
    slow = Stage(NAME, counting(ran, "slow", every=2.5), poll=0.02)
    task = asyncio.create_task(run_stage(slow, db, quick, stop))
    await until(lambda: bool(ran))
    for _ in range(5):
        await asyncio.sleep(0.4)
        assert not await leases.acquire(db, NAME, "someone else")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert ran == ["slow"]


async def test_a_lease_lost_during_a_batch_cancels_it(
    db: Database, quick: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the process stall past its lease and another take it, the batch stops."""
    finished: list[str] = []

    async def long(db: Database, settings: Settings) -> int:
        await asyncio.sleep(3)
        finished.append("long")
        return 0

    real, asked = leases.acquire, []

    async def stolen(db_: Database, name: str, who: str, seconds: float = 10) -> bool:
        asked.append(who)
        if len(asked) > 1:  # every renewal after the first finds another holder
            return False
        return await real(db_, name, who, seconds)

    monkeypatch.setattr(leases, "acquire", stolen)
    stop = asyncio.Event()
    task = start(long, db, quick, stop)
    await asyncio.sleep(1.2)  # the renewal at 0.5 s failed: the batch was cancelled
    stop.set()
    await asyncio.wait_for(task, 10)
    assert finished == []
    assert len(asked) >= 2
