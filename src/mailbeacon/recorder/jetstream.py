"""The edge's recorder in the multi-machine mode: a hit is durable once JetStream says so.

The same promise as the database recorders (`batch.GroupCommit`): `submit(hit)` gives a
future that resolves when the hit is stored, and the edge answers the reader only then.
Here "stored" is JetStream's publish acknowledgement, which it sends once the message is
in the stream's file (and, with 3 replicas, on a majority of servers). PostgreSQL is not
involved: the edge keeps answering while the database is down, and the pipeline workers
write the raw hit to PostgreSQL with its events.

Publishing is asynchronous (`publish_async`): many hits are on the wire at once and each
acknowledgement resolves its reader's future; one that does not come within
`ACK_TIMEOUT_S` fails with `RecorderUnavailable` (the reader gets a 503, and no promise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from mailbeacon.pipeline.jetstream import (
    HitIds,
    connect,
    encode_hit,
    ensure_stream,
    id_store,
    partition_of,
    subject,
)
from mailbeacon.recorder.batch import Hit, RecorderUnavailable
from mailbeacon.settings import Settings

log = logging.getLogger("mailbeacon.recorder")

ACK_TIMEOUT_S = 5.0
START_RETRY_S = 1.0


class JetStreamRecorder:
    """`HitsWriter` over JetStream (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.partitions = settings.partitions
        self.committed = 0
        self._nc: Any = None
        self._js: Any = None
        self._ids: HitIds | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._down_logged = False
        # (deadline, reader's future, ack future): failed in order once past the deadline
        self._inflight: deque[tuple[float, asyncio.Future[None], asyncio.Future[Any]]] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> bool:
        return self._ready and self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks.append(self._loop.create_task(self._sweep(), name="jetstream-acks"))
        try:
            await self._open()
        except Exception as exc:  # serve anyway (503 for hits) and keep trying
            self._log_down(exc)
            self._tasks.append(self._loop.create_task(self._keep_opening(), name="jetstream"))

    async def _open(self) -> None:
        async def disconnected() -> None:
            self._log_down("disconnected")

        async def reconnected() -> None:
            log.warning("recorder: NATS is back")
            self._down_logged = False

        self._nc = await connect(
            self.settings,
            name="mailbeacon-edge",
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
        self._js = self._nc.jetstream(timeout=ACK_TIMEOUT_S)
        await ensure_stream(self._js, self.settings)
        ids = HitIds(await id_store(self._js, self.settings))
        await ids.start()
        self._ids = ids
        self._ready = True

    async def _keep_opening(self) -> None:
        while not self._ready:
            await asyncio.sleep(START_RETRY_S)
            with contextlib.suppress(Exception):
                if self._nc is not None:
                    await self._nc.close()
                self._nc = None
                await self._open()
        log.warning("recorder: NATS JetStream reached")

    def _log_down(self, why: object) -> None:
        if not self._down_logged:  # once per outage, not once per hit
            log.error("recorder: NATS JetStream is unavailable (%s); hits get 503", why)
            self._down_logged = True

    async def record(self, hit: Hit) -> None:
        await self.submit(hit)

    def submit(self, hit: Hit) -> asyncio.Future[None]:
        loop, ids = self._loop, self._ids
        if loop is None or ids is None or not self.available:
            raise RecorderUnavailable("NATS JetStream is unavailable")
        try:
            hit_id = ids.take()
        except LookupError as exc:
            raise RecorderUnavailable(str(exc)) from None
        fut: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._publish(hit_id, hit, fut))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)
        return fut

    async def _publish(self, hit_id: int, hit: Hit, fut: asyncio.Future[None]) -> None:
        p = partition_of(hit.company_id, hit.lead_id, self.partitions)
        try:
            ack = await self._js.publish_async(
                subject(p),
                encode_hit(hit_id, hit),
                wait_stall=ACK_TIMEOUT_S,
                headers={"Nats-Msg-Id": str(hit_id)},
            )
        except Exception as exc:
            if not fut.done():
                fut.set_exception(RecorderUnavailable(f"hit not published: {exc}"))
            return
        self._inflight.append((time.monotonic() + ACK_TIMEOUT_S, fut, ack))
        ack.add_done_callback(lambda a: self._acked(a, fut))

    def _acked(self, ack: asyncio.Future[Any], fut: asyncio.Future[None]) -> None:
        if fut.done():
            return
        if ack.cancelled():
            fut.set_exception(RecorderUnavailable("hit not acknowledged"))
        elif (exc := ack.exception()) is not None:
            fut.set_exception(RecorderUnavailable(f"hit refused by JetStream: {exc}"))
        else:
            self.committed += 1
            fut.set_result(None)

    async def _sweep(self) -> None:
        """Fail the readers whose acknowledgement is overdue (NATS went away with their
        hit on the wire: it may or may not be stored, so no promise is made)."""
        while True:
            await asyncio.sleep(0.25)
            t = time.monotonic()
            q = self._inflight
            while q and (q[0][1].done() or q[0][0] < t):
                _, fut, ack = q.popleft()
                if not fut.done():
                    fut.set_exception(RecorderUnavailable("no acknowledgement from JetStream"))
                    ack.cancel()

    async def close(self) -> None:
        """Wait for what is on the wire (briefly), then disconnect."""
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=ACK_TIMEOUT_S)
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while any(not f.done() for _, f, _ in self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
