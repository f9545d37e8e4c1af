"""The group-commit loop shared by both engines, and the `Hit` it carries (its stored
form: `recorder.columns`).

`record()` parks the caller on a future and appends the hit to the pending batch; one
writer task drains the batch when it holds `batch_size` hits, when hits stop arriving
(one event-loop tick with no new hit), or `linger_s` after its first hit, whichever
comes first. While a batch is being committed the next one fills up, so under load a
commit covers many hits and nobody waits on a timer.

When the database fails the batch's callers get `RecorderUnavailable`, the failure is
logged once, later calls fail fast, and the loop reconnects in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import NamedTuple, Protocol

log = logging.getLogger("mailbeacon.recorder")

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class RecorderUnavailable(Exception):
    """The hit was not committed: the database is unreachable or refused the batch."""


class Hit(NamedTuple):
    """One raw request to the edge, as cheap to build as a tuple.

    Header values stay bytes and the time stays a float: decoding and formatting happen
    in the writer, after the reply no longer waits on them.
    """

    at: float  # time.time()
    kind: str  # open|click|unsubscribe|forward
    company_id: int
    message_id: int
    lead_id: int
    link_index: int | None
    ip: str | None
    user_agent: bytes | None
    accept_language: bytes | None
    method: str


class Recorder(Protocol):
    """What the edge needs: wait until a hit is committed, or hear that it was not."""

    async def record(self, hit: Hit) -> None: ...


class HitsWriter(Recorder, Protocol):
    """A recorder with its lifecycle, and `submit` for answering from a callback."""

    committed: int

    @property
    def available(self) -> bool: ...

    def submit(self, hit: Hit) -> asyncio.Future[None]: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class GroupCommit:
    """Batches hits and commits each batch once. Subclasses implement the engine calls."""

    def __init__(
        self, *, batch_size: int = 256, linger_s: float = 0.002, anonymize_ip: bool = False
    ) -> None:
        self.batch_size = max(1, batch_size)
        self.linger_s = max(0.0, linger_s)
        self.anonymize_ip = anonymize_ip
        self._hits: list[Hit] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down = False
        self._closing = False
        self.committed = 0  # hits committed by this process, for tests and the bench

    # -- the engine -------------------------------------------------------------------
    async def _open(self) -> None:
        raise NotImplementedError

    async def _write(self, hits: list[Hit]) -> None:
        """Insert and commit `hits` in one transaction; raise if not committed."""
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    # -- the public face --------------------------------------------------------------
    @property
    def available(self) -> bool:
        return not self._down

    async def start(self) -> None:
        try:
            await self._open()
        except Exception as exc:  # serve anyway; the loop keeps trying
            self._mark_down(exc)
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="recorder")

    async def record(self, hit: Hit) -> None:
        """Return once `hit` is committed; raise `RecorderUnavailable` if it was not."""
        await self.submit(hit)

    def submit(self, hit: Hit) -> asyncio.Future[None]:
        """Queue `hit`; the future resolves once it is committed (or fails with
        `RecorderUnavailable`). For callers that answer from a callback, not a task."""
        loop = self._loop
        if self._down or loop is None:
            raise RecorderUnavailable("the hits database is unavailable")
        fut = loop.create_future()
        self._hits.append(hit)
        self._waiters.append(fut)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
        return fut

    async def close(self) -> None:
        """Commit what is pending, then stop."""
        self._closing = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=10)
        with contextlib.suppress(Exception):
            await self._close()

    # -- the loop ---------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._down:
                await self._reconnect()
            if not self._hits:
                if self._closing:
                    return
                self._wake = loop.create_future()
                await self._wake
                self._wake = None
            await self._gather(loop)
            hits, waiters = self._hits, self._waiters
            self._hits, self._waiters = [], []
            await self._commit(hits, waiters)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let the batch grow while hits keep arriving, within the size and time caps."""
        deadline = loop.time() + self.linger_s
        seen = -1
        while (
            len(self._hits) != seen
            and len(self._hits) < self.batch_size
            and loop.time() < deadline
            and not self._closing
        ):
            seen = len(self._hits)
            await asyncio.sleep(0)

    async def _commit(self, hits: list[Hit], waiters: list[asyncio.Future[None]]) -> None:
        error: Exception | None = None
        for attempt in range(2):  # a dropped connection gets one reconnect and retry
            try:
                await self._write(hits)
                error = None
                break
            except Exception as exc:
                error = exc
                if attempt == 0:
                    with contextlib.suppress(Exception):
                        await self._close()
                    try:
                        await self._open()
                    except Exception:
                        break
        if error is None:
            self.committed += len(hits)
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
            return
        self._mark_down(error)
        failure = RecorderUnavailable(f"hits not committed: {error}")
        for fut in waiters:
            if not fut.done():
                fut.set_exception(failure)

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:  # log the outage once, not once per hit
            log.error("recorder: the hits database is unavailable (%s); retrying", exc)
        self._down = True

    async def _reconnect(self) -> None:
        attempt = 0
        while self._down and not self._closing:
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
            with contextlib.suppress(Exception):
                await self._close()
            try:
                await self._open()
                await self._write([])  # proves the connection works
            except Exception:
                continue
            self._down = False
            log.warning("recorder: the hits database is back after %d attempts", attempt)
