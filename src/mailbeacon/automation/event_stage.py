"""The event webhook stage: two parts, each a stage of the pipeline's runner
(`mailbeacon.pipeline.runner`), listed in `mailbeacon.pipeline.stages`.

Each is held by one process at a time through its lease:
- the *fan-out* (lease ``event_webhooks``) reads events by cursor and queues them for
  the subscriptions that want them (`event_fanout`);
- the *sender* (lease ``event_webhooks.sender``) POSTs the queued deliveries
  (`event_sender`). One sender keeps a lead's deliveries in order without row locks;
  within it, POSTs to many leads and receivers run concurrently.
When the fan-out queues something it wakes this process's sender at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from mailbeacon.automation.event_backoff import EventWebhookTuning
from mailbeacon.automation.event_fanout import fan_out_batch
from mailbeacon.automation.event_lanes import Lanes
from mailbeacon.automation.event_sender import Sender
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database

FAN_OUT_LEASE = "event_webhooks"
SENDER_LEASE = "event_webhooks.sender"


def client(settings: Settings, tuning: EventWebhookTuning) -> Lanes:
    """The sender's lanes of keep-alive connections to every receiver; they never follow
    redirects, and, unless the installation allows private receivers, connect only to
    public addresses."""
    return Lanes(tuning.lanes, tuning.timeout, settings.webhook_allow_private)


class FanOut:
    def __init__(self, tuning: EventWebhookTuning, wake: asyncio.Event) -> None:
        self.tuning, self.wake = tuning, wake

    async def batch(self, db: Database, settings: Settings) -> int:
        """One batch of events queued for their subscriptions; the events read."""
        async with db.begin() as conn:
            read, queued = await fan_out_batch(conn, self.tuning.batch)
        if queued:
            self.wake.set()
        return read


class Sending:
    """The sender with its connections, open while the stage runs."""

    def __init__(self, tuning: EventWebhookTuning) -> None:
        self.tuning = tuning
        self.exits = contextlib.AsyncExitStack()
        self.sender: Sender | None = None

    async def setup(self, db: Database, settings: Settings) -> None:
        http = await self.exits.enter_async_context(client(settings, self.tuning))
        self.sender = Sender(db, http, self.tuning)

    async def batch(self, db: Database, settings: Settings) -> int:
        """Start what is due, then wait a little for what is in flight; the chains in
        flight (0: nothing is, rest until the fan-out wakes us)."""
        assert self.sender is not None
        started = await self.sender.start_due()
        if self.sender.flight:
            await self.sender.collect(self.tuning.flush_every if started else self.tuning.idle_poll)
        return len(self.sender.flight)

    async def lost(self, db: Database, settings: Settings) -> None:
        """Another process sends now: finish and record what is in flight here."""
        if self.sender is not None:
            await self.sender.drain(timeout=self.tuning.timeout)

    async def teardown(self, db: Database, settings: Settings) -> None:
        try:
            if self.sender is not None:
                await self.sender.drain(timeout=3)
        finally:
            await self.exits.aclose()


def stages(settings: Settings) -> list[Stage]:
    """The fan-out and the sender, sharing the wake-up of this process."""
    tuning = EventWebhookTuning.from_settings(settings)
    wake = asyncio.Event()
    fan_out, sending = FanOut(tuning, wake), Sending(tuning)
    poll, lease = tuning.idle_poll, tuning.lease_ttl
    return [
        Stage(FAN_OUT_LEASE, fan_out.batch, poll=poll, lease_seconds=lease),
        Stage(
            SENDER_LEASE,
            sending.batch,
            poll=poll,
            lease_seconds=lease,
            wake=wake,
            setup=sending.setup,
            teardown=sending.teardown,
            lost=sending.lost,
        ),
    ]


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Run both parts until `stop` is set (the pipeline process runs them as its own)."""
    async with asyncio.TaskGroup() as group:
        for stage in stages(settings):
            group.create_task(run_stage(stage, db, settings, stop))
