"""One loop for every pipeline stage: lease, batch, rest, stop.

A stage plugs in one batch function (`Stage.batch`: one turn's work, returning how
much it did; 0 means it caught up). The runner does the rest the same way for all:

- The lease (`store.stages`): of several processes, one runs a leased stage at a time.
  It is taken, then renewed at half its life, not every poll: each renewal is a write,
  and on SQLite a write waits for the one write lock the edge's hits writer needs
  every few milliseconds. A batch still running at half the lease's life renews it on
  the side; if the lease was lost meanwhile (this process stalled past its end and
  another took it), the batch is cancelled, its transaction with it. A process without
  the lease asks again every `pipeline_retry_seconds` (a third of a shorter lease), and
  releases it on stop, so another takes over at once instead of after it lapses.
- One batch per turn: the next turn starts at once after work, after `poll` seconds
  when the batch found nothing (cut short by the stage's `wake`, set by a stage that
  queued work for it in this process).
- A failing batch (a database restarting, a bug) is logged once per streak, not every
  poll, tried again every `pipeline_retry_seconds`, and the lease is checked before the
  next try; the first success after a streak says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mailbeacon.settings import Settings
from mailbeacon.store import stages as leases
from mailbeacon.store.db import Database

log = logging.getLogger("mailbeacon.pipeline")

Batch = Callable[[Database, Settings], Awaitable[int]]
Hook = Callable[[Database, Settings], Awaitable[None]]
Check = Callable[[Database, Settings], Awaitable[bool]]


@dataclass(frozen=True)
class Stage:
    """A pipeline stage as the runner sees it. Built per run (`stage(settings)` in the
    module that owns it) when its hooks share state with its batch, e.g. enrich's geo
    database, opened by `setup` and closed by `teardown`."""

    name: str  # the lease's name, and the logs'
    batch: Batch
    poll: float  # seconds of rest after a batch that found nothing
    lease_seconds: float | None = None  # None: settings.pipeline_lease_seconds
    leased: bool = True  # False: every process runs it (the work is safe to repeat)
    # Hold the lease only while this says there is work: taken before each batch and
    # released after it, so another holder (the CLI's `campaign send`) gets it between.
    wanted: Check | None = None
    wake: asyncio.Event | None = None  # set to end an idle rest early
    setup: Hook | None = None  # before the first turn
    teardown: Hook | None = None  # after the last, before the lease is released
    acquired: Hook | None = None  # each time this process takes the lease afresh
    lost: Hook | None = None  # when a renewal finds another process holding it


class Lease:
    """A stage's lease as one runner knows it: held until `until` (loop time)."""

    def __init__(self, db: Database, name: str, seconds: float) -> None:
        self.db, self.name, self.seconds = db, name, seconds
        self.holder = leases.holder_id()
        self.loop = asyncio.get_running_loop()
        self.until = 0.0

    def held(self) -> bool:
        return self.loop.time() < self.until

    def renew_in(self) -> float:
        """Seconds until it should be renewed: at half its life."""
        return self.until - self.seconds / 2 - self.loop.time()

    async def renew(self) -> bool:
        """Take or renew it; False when another process holds it."""
        asked = self.loop.time()  # the lease runs from the request, not the answer
        ok = await leases.acquire(self.db, self.name, self.holder, self.seconds)
        self.until = asked + self.seconds if ok else 0.0
        return ok

    async def release(self) -> None:
        if self.until:
            self.until = 0.0
            await leases.release(self.db, self.name, self.holder)


async def run_stage(stage: Stage, db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Run `stage` until `stop` is set (see the module docstring)."""
    seconds = stage.lease_seconds or settings.pipeline_lease_seconds
    lease = Lease(db, stage.name, seconds) if stage.leased else None
    # Waiting for the lease, or after a failure: not every poll (each try is a write).
    retry = max(stage.poll, min(settings.pipeline_retry_seconds, seconds / 3))
    failures = 0
    if stage.setup is not None:
        await stage.setup(db, settings)
    try:
        while not stop.is_set():
            try:
                done = await _turn(stage, lease, db, settings)
            except Exception:
                failures += 1
                if failures == 1:
                    log.exception("stage %s: batch failed; retrying every %g s", stage.name, retry)
                if lease is not None:  # it may be why: check it before the next try
                    lease.until = min(lease.until, lease.loop.time() + seconds / 2)
                await _rest(stop, None, retry)
                continue
            if done is None:  # another process runs it (or, `wanted`, nothing to do)
                await _rest(stop, None, stage.poll if stage.wanted is not None else retry)
                continue
            if failures:
                log.warning("stage %s: working again after %d failures", stage.name, failures)
                failures = 0
            if not done:
                await _rest(stop, stage.wake, stage.poll)
    finally:
        try:
            if stage.teardown is not None:
                await stage.teardown(db, settings)
        finally:
            if lease is not None:
                try:
                    await lease.release()
                except Exception:
                    log.warning("stage %s: could not release its lease; it lapses", stage.name)


async def _turn(stage: Stage, lease: Lease | None, db: Database, settings: Settings) -> int | None:
    """One turn: the batch's count, or None when this process may not run it now."""
    if lease is None:
        return await stage.batch(db, settings)
    if stage.wanted is not None:
        if not await stage.wanted(db, settings):
            return None
        if not await _hold(stage, lease, db, settings):
            return None
        try:
            return await _batch(stage, lease, db, settings)
        finally:
            await lease.release()
    if lease.renew_in() <= 0 and not await _hold(stage, lease, db, settings):
        return None
    return await _batch(stage, lease, db, settings)


async def _hold(stage: Stage, lease: Lease, db: Database, settings: Settings) -> bool:
    """Take or renew the lease, running the stage's hooks on a change of hands."""
    had = lease.held()
    if await lease.renew():
        if not had and stage.acquired is not None:
            await stage.acquired(db, settings)
        return True
    if had:
        log.warning("stage %s: another process took the lease", stage.name)
        if stage.lost is not None:
            await stage.lost(db, settings)
    return False


async def _batch(stage: Stage, lease: Lease, db: Database, settings: Settings) -> int:
    """The batch, its lease renewed beside it should it run past half the lease's life."""
    work = asyncio.ensure_future(stage.batch(db, settings))
    try:
        while True:
            await asyncio.wait({work}, timeout=max(lease.renew_in(), 0.0))
            if work.done():
                return work.result()
            try:
                kept = await lease.renew()
            except Exception:  # the database is slow or away: go on while the lease lasts
                kept = lease.held()
                if kept:  # and ask again in a second
                    left = lease.until - lease.loop.time()
                    await asyncio.wait({work}, timeout=max(min(1.0, left), 0.0))
                    continue
            if not kept:
                log.warning("stage %s: lost its lease during a batch; cancelled", stage.name)
                if stage.lost is not None:
                    await stage.lost(db, settings)
                return 0
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work


async def _rest(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` (or `wake`) is set meanwhile."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    if wake is not None:
        wake.clear()
