"""The event webhook stage: `run_forever(db, settings, stop)`, registered in `mailbeacon.app`.

Two loops, each held by one process at a time through its lease:
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
import logging

from mailbeacon.automation.consumer import LostCursor
from mailbeacon.automation.event_backoff import EventWebhookTuning
from mailbeacon.automation.event_fanout import fan_out_batch
from mailbeacon.automation.event_lanes import Lanes
from mailbeacon.automation.event_sender import Sender
from mailbeacon.automation.stage import Lease, _nap
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.stages import holder_id

log = logging.getLogger("mailbeacon.event_webhooks")
FAN_OUT_LEASE = "event_webhooks"
SENDER_LEASE = "event_webhooks.sender"


async def fan_out_loop(
    db: Database, holder: str, stop: asyncio.Event, wake: asyncio.Event, tuning: EventWebhookTuning
) -> None:
    lease = Lease(db, FAN_OUT_LEASE, holder, tuning.lease_ttl)
    try:
        while not stop.is_set():
            if not await lease.held():
                await _nap(stop, None, tuning.lease_ttl / 3)
                continue
            read = 0
            try:
                async with db.begin() as conn:
                    read, queued = await fan_out_batch(conn, tuning.batch)
                if queued:
                    wake.set()
            except LostCursor:
                log.warning("event webhook cursor moved by another process; re-reading")
                lease.valid_until = 0.0
            if not read:
                await _nap(stop, None, tuning.idle_poll)
    finally:
        with contextlib.suppress(Exception):
            await lease.release()


async def send_loop(sender: Sender, holder: str, stop: asyncio.Event, wake: asyncio.Event) -> None:
    tuning = sender.tuning
    lease = Lease(sender.db, SENDER_LEASE, holder, tuning.lease_ttl)
    try:
        while not stop.is_set():
            if not await lease.held():
                await sender.drain(timeout=tuning.timeout)
                await _nap(stop, None, tuning.lease_ttl / 3)
                continue
            started = await sender.start_due()
            if sender.flight:
                await sender.collect(tuning.idle_poll if not started else tuning.flush_every)
            else:
                await _nap(stop, wake, tuning.idle_poll)
    finally:
        await sender.drain(timeout=3)
        with contextlib.suppress(Exception):
            await lease.release()


def client(settings: Settings, tuning: EventWebhookTuning) -> Lanes:
    """The sender's lanes of keep-alive connections to every receiver; they never follow
    redirects, and, unless the installation allows private receivers, connect only to
    public addresses."""
    return Lanes(tuning.lanes, tuning.timeout, settings.webhook_allow_private)


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    tuning = EventWebhookTuning.from_settings(settings)
    holder = holder_id()
    wake = asyncio.Event()
    async with client(settings, tuning) as http:
        sender = Sender(db, http, tuning)
        async with asyncio.TaskGroup() as group:
            group.create_task(fan_out_loop(db, holder, stop, wake, tuning))
            group.create_task(send_loop(sender, holder, stop, wake))
