"""The automation stage: two parts, each a stage of the pipeline's runner
(`mailbeacon.pipeline.runner`), listed in `mailbeacon.pipeline.stages`.

- the *consumer* (one process at a time, lease ``automation``) reads events after the
  cursor, fires rules and applies the scoring model, scans not_opened deadlines and
  fades old scores;
- the *jobs* part takes due jobs. On PostgreSQL every process runs one (SKIP LOCKED
  spreads the jobs); on SQLite, one writer at a time, it holds lease ``automation.jobs``.
When the consumer writes jobs due now it wakes this process's jobs part, so an immediate
action starts within milliseconds; other processes find it on their next poll.
Their knobs are the `automation_*` fields of `Settings`.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from mailbeacon import delivery
from mailbeacon.automation.actions import Context
from mailbeacon.automation.consumer import RuleCache, consume_batch
from mailbeacon.automation.deadlines import scan_deadlines
from mailbeacon.automation.runner import RemotePool, run_local
from mailbeacon.automation.scoring import refresh_scores
from mailbeacon.automation.ssrf import public_only_transport
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.stages import holder_id
from mailbeacon.tokens import Signer

CONSUMER_LEASE = "automation"
RUNNER_LEASE = "automation.jobs"


class Consumer:
    """Events in, rules fired and scores moved; the rules are cached between batches."""

    def __init__(self, wake: asyncio.Event) -> None:
        self.wake = wake
        self.cache = RuleCache()
        self.next_scan = 0.0

    async def batch(self, db: Database, settings: Settings) -> int:
        """One batch of events (and, every `automation_deadline_every`, the deadlines);
        the events read (0: caught up)."""
        async with db.begin() as conn:
            read, due = await consume_batch(conn, self.cache, settings.automation_batch)
        self.cache.committed()
        if time.monotonic() >= self.next_scan:
            self.next_scan = time.monotonic() + settings.automation_deadline_every
            async with db.begin() as conn:
                due += await scan_deadlines(conn, settings.automation_deadline_grace)
            async with db.begin() as conn:
                await refresh_scores(conn, now())  # old engagement fades
        if due:
            self.wake.set()
        return read


class Jobs:
    """Due jobs taken and run: local ones in batches, remote ones (emails, webhooks)
    concurrently in the pool, which outlives a batch."""

    def __init__(self) -> None:
        self.holder = holder_id()  # whose claim a job carries
        self.http: httpx.AsyncClient | None = None
        self.pool: RemotePool | None = None

    async def setup(self, db: Database, settings: Settings) -> None:
        transport = None if settings.webhook_allow_private else public_only_transport()
        self.http = httpx.AsyncClient(
            timeout=settings.automation_webhook_timeout,
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )
        ctx = Context(
            db=db,
            settings=settings,
            signer=Signer(settings.secret_keys),
            transport=delivery.SmtpTransport(settings),
            http=self.http,
        )
        self.pool = RemotePool(ctx, self.holder)

    async def batch(self, db: Database, settings: Settings) -> int:
        """The jobs taken; 0 when fewer than a batch were due (rest until woken)."""
        assert self.pool is not None
        taken = await run_local(self.pool.ctx, self.holder)
        taken += await self.pool.fill()
        return taken if taken >= settings.automation_job_batch else 0

    async def teardown(self, db: Database, settings: Settings) -> None:
        try:
            if self.pool is not None:
                await self.pool.drain(timeout=3)
        finally:
            if self.http is not None:
                await self.http.aclose()


def stages(db: Database, settings: Settings) -> list[Stage]:
    """The consumer and the jobs part, sharing the wake-up of this process."""
    wake = asyncio.Event()
    consumer, jobs = Consumer(wake), Jobs()
    poll, lease = settings.automation_idle_poll, settings.automation_lease_ttl
    return [
        Stage(CONSUMER_LEASE, consumer.batch, poll=poll, lease_seconds=lease),
        Stage(
            RUNNER_LEASE,
            jobs.batch,
            poll=poll,
            lease_seconds=lease,
            leased=db.is_sqlite,
            wake=wake,
            setup=jobs.setup,
            teardown=jobs.teardown,
        ),
    ]


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Run both parts until `stop` is set (the pipeline process runs them as its own)."""
    async with asyncio.TaskGroup() as group:
        for stage in stages(db, settings):
            group.create_task(run_stage(stage, db, settings, stop))
