"""The automation stage: `run_forever(db, settings, stop)`, registered in `mailbeacon.app`.

Two loops per process:
- the *consumer* (one process at a time, lease ``automation``) reads events after the
  cursor, fires rules and applies the scoring model, scans not_opened deadlines and
  fades old scores;
- the *runner* takes due jobs. On PostgreSQL every process runs one (SKIP LOCKED spreads
  the jobs); on SQLite, one writer at a time, it holds lease ``automation.jobs``.
When the consumer writes jobs due now it wakes this process's runner, so an immediate
action starts within milliseconds; other processes find it on their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

import httpx

from mailbeacon import delivery
from mailbeacon.automation.actions import Context
from mailbeacon.automation.consumer import LostCursor, RuleCache, consume_batch
from mailbeacon.automation.deadlines import scan_deadlines
from mailbeacon.automation.runner import RemotePool, run_local
from mailbeacon.automation.scoring import refresh_scores
from mailbeacon.automation.ssrf import public_only_transport
from mailbeacon.automation.tuning import Tuning
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now, stages
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon.automation")
CONSUMER_LEASE = "automation"
RUNNER_LEASE = "automation.jobs"


class Lease:
    """A lease renewed every third of its life; `held()` says whether we have it now."""

    def __init__(self, db: Database, name: str, holder: str, ttl: float) -> None:
        self.db, self.name, self.holder, self.ttl = db, name, holder, ttl
        self.valid_until = 0.0

    async def held(self) -> bool:
        left = self.valid_until - time.monotonic()
        if left > self.ttl * 2 / 3:
            return True
        ok = await stages.acquire(self.db, self.name, self.holder, self.ttl)
        self.valid_until = time.monotonic() + self.ttl if ok else 0.0
        return ok

    async def release(self) -> None:
        if self.valid_until:
            await stages.release(self.db, self.name, self.holder)


async def _nap(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
    if wake is not None:
        wake.clear()


async def consume_loop(
    db: Database, holder: str, stop: asyncio.Event, wake: asyncio.Event, tuning: Tuning
) -> None:
    lease = Lease(db, CONSUMER_LEASE, holder, tuning.lease_ttl)
    cache = RuleCache()
    next_scan = 0.0
    try:
        while not stop.is_set():
            if not await lease.held():
                await _nap(stop, None, tuning.lease_ttl / 3)
                continue
            read, due = 0, 0
            try:
                async with db.begin() as conn:
                    read, due = await consume_batch(conn, cache, tuning.batch)
                cache.committed()
                if time.monotonic() >= next_scan:
                    next_scan = time.monotonic() + tuning.deadline_every
                    async with db.begin() as conn:
                        due += await scan_deadlines(conn, tuning.deadline_grace)
                    async with db.begin() as conn:
                        await refresh_scores(conn, now())  # old engagement fades
            except LostCursor:
                log.warning("automation cursor moved by another process; re-reading")
                lease.valid_until = 0.0
            if due:
                wake.set()
            if not read:  # caught up: look again shortly (any events: read on at once)
                await _nap(stop, None, tuning.idle_poll)
    finally:
        with contextlib.suppress(Exception):
            await lease.release()


async def run_loop(
    ctx: Context, holder: str, stop: asyncio.Event, wake: asyncio.Event, tuning: Tuning
) -> None:
    lease = Lease(ctx.db, RUNNER_LEASE, holder, tuning.lease_ttl) if ctx.db.is_sqlite else None
    pool = RemotePool(ctx, holder, tuning)
    try:
        while not stop.is_set():
            if lease is not None and not await lease.held():
                await _nap(stop, None, tuning.lease_ttl / 3)
                continue
            taken = await run_local(ctx, holder, tuning)
            taken += await pool.fill()
            if taken < tuning.job_batch:
                await _nap(stop, wake, tuning.idle_poll)
    finally:
        await pool.drain(timeout=3)
        if lease is not None:
            with contextlib.suppress(Exception):
                await lease.release()


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Run the consumer and the job runner until `stop` is set."""
    tuning = Tuning.from_settings(settings)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    wake = asyncio.Event()
    transport = None if settings.webhook_allow_private else public_only_transport()
    async with httpx.AsyncClient(
        timeout=tuning.webhook_timeout, follow_redirects=False, trust_env=False, transport=transport
    ) as http:
        ctx = Context(
            db=db,
            settings=settings,
            signer=Signer(settings.secret_keys),
            transport=delivery.SmtpTransport(settings),
            http=http,
        )
        # A TaskGroup: if one loop dies the other is cancelled, and the supervisor
        # restarts both, never leaving a second copy of either running.
        async with asyncio.TaskGroup() as group:
            group.create_task(consume_loop(db, holder, stop, wake, tuning))
            group.create_task(run_loop(ctx, holder, stop, wake, tuning))
