"""The SQLite hits writer: one dedicated thread, stdlib sqlite3, one transaction per batch.

The connection runs WAL with ``synchronous=FULL``: COMMIT fsyncs the WAL, so a hit the
edge answered survives ``kill -9`` and a power cut. (NORMAL would survive ``kill -9``
but could lose the last commits on power loss; group commit makes FULL cheap.) The
thread is the connection's only user, so sqlite3's thread check holds, and the event
loop never blocks on the disk.

`HitsFile` is the file access, shared with the writer process `serve` runs on SQLite
(`recorder.writer`); `SqliteRecorder` is the in-process recorder (a server built without
`serve`, and tests). Writers to one file take turns through an `flock` on a lock file
beside the database: the kernel hands the lock over the moment it is free, where
SQLite's own busy handler would sleep for milliseconds (it made p99 ~90 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

from mailbeacon.recorder.batch import RETRY_DELAYS, Hit, RecorderUnavailable
from mailbeacon.recorder.columns import HIT_COLUMNS, WIDTH, format_flat

INSERT = f"INSERT INTO hits ({', '.join(HIT_COLUMNS)}) VALUES "
ROW = "(" + ", ".join(["?"] * WIDTH) + ")"
# Rows per INSERT statement: one sqlite3_step (one GIL release) for many hits, within the
# 999 bound variables older SQLite builds allow.
CHUNK = 99


def insert_sql(rows: int) -> str:
    return INSERT + ", ".join([ROW] * rows)


_INSERTS = [insert_sql(n) for n in range(CHUNK + 1)]
_EPOCH = dt.datetime(1970, 1, 1)
log = logging.getLogger("mailbeacon.recorder")


_second: tuple[int, str] = (0, "1970-01-01 00:00:00")  # the last second stamped


def stamp(at: float) -> str:
    """Naive UTC in the text form SQLAlchemy's SQLite DateTime reads and writes."""
    global _second
    seconds, micros = divmod(round(at * 1_000_000), 1_000_000)
    key, text = _second  # one read: another writer thread may replace it meanwhile
    if key != seconds:  # a batch's hits mostly share their second
        t = _EPOCH + dt.timedelta(seconds=seconds)
        text = f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        _second = seconds, text
    return f"{text}.{micros:06d}"


def _resolve(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in waiters:
        if not fut.done():  # a cancelled caller no longer waits
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


def _finish(done: asyncio.Future[None] | None) -> None:
    if done is not None and not done.done():
        done.set_result(None)


def _begin(conn: sqlite3.Connection, timeout_s: float = 10.0) -> None:
    """BEGIN IMMEDIATE (SQLite's write lock up front), waiting briefly while it is busy."""
    deadline = time.monotonic() + timeout_s
    delay = 0.0002
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(delay)  # releases the GIL
        delay = min(delay * 2, 0.002)


class SqliteRecorder:
    """Group commit driven by the writer thread: whenever it is free it takes every hit
    waiting, commits them in one transaction, and resolves their futures on the loop with
    one `call_soon_threadsafe`. Nobody waits on a timer or on the event loop to hand
    over the next batch: under load a batch is whatever arrived during the last commit.
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 256,
        linger_s: float = 0.0,  # unused: the thread takes a batch the moment it is free
        anonymize_ip: bool = False,
        synchronous: str = "FULL",
    ) -> None:
        # Imported here: the hits writer process (`recorder.writer`) uses this module
        # but not the store, and starting without SQLAlchemy makes a restart quick.
        from mailbeacon.store.db import sqlite_path

        path = sqlite_path(url)
        if path is None:
            raise ValueError(f"the hits recorder needs an SQLite file, not {url!r}")
        self.path = path
        self._file = HitsFile(path, synchronous)
        self.batch_size = max(1, batch_size)
        self.anonymize_ip = anonymize_ip
        self.committed = 0  # hits committed by this process, for tests and the bench
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        # What the loop hands the thread, under `_mutex`; `_signal` wakes a sleeping thread.
        self._mutex = threading.Lock()
        self._signal = threading.Lock()
        self._signal.acquire()
        self._sleeping = False
        self._hits: list[Hit] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._down = False
        self._closing = False
        self._stop = threading.Event()  # cuts a reconnect's wait short on close

    @property
    def available(self) -> bool:
        return not self._down

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = loop.create_future()
        try:
            await asyncio.to_thread(self._open_sync)
        except Exception as exc:  # serve anyway; the thread keeps trying
            self._mark_down(exc)
        self._thread = threading.Thread(target=self._main, name="hits-writer", daemon=True)
        self._thread.start()

    async def record(self, hit: Hit) -> None:
        """Return once `hit` is committed; raise `RecorderUnavailable` if it was not."""
        await self.submit(hit)

    def submit(self, hit: Hit) -> asyncio.Future[None]:
        """Queue `hit`; the future resolves once it is committed (or fails with
        `RecorderUnavailable`). For callers that answer from a callback, not a task."""
        loop = self._loop
        if self._down or self._closing or loop is None:
            raise RecorderUnavailable("the hits database is unavailable")
        fut = loop.create_future()
        with self._mutex:
            self._hits.append(hit)
            self._waiters.append(fut)
            wake, self._sleeping = self._sleeping, False
        if wake:
            self._signal.release()
        return fut

    async def close(self) -> None:
        """Commit what is pending, then stop."""
        with self._mutex:
            self._closing = True
            wake, self._sleeping = self._sleeping, False
        self._stop.set()
        if wake:
            self._signal.release()
        if self._done is not None and self._thread is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._done), timeout=10)

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:  # log the outage once, not once per hit
            log.error("recorder: the hits database is unavailable (%s); retrying", exc)
        self._down = True

    # -- the writer thread --------------------------------------------------------------
    def _main(self) -> None:
        try:
            while True:
                if self._down and not self._closing:
                    self._reconnect()
                with self._mutex:
                    hits, waiters = self._hits, self._waiters
                    if len(hits) > self.batch_size:  # the rest goes in the next commit
                        n = self.batch_size
                        self._hits, self._waiters = hits[n:], waiters[n:]
                        hits, waiters = hits[:n], waiters[:n]
                    else:
                        self._hits, self._waiters = [], []
                    if not hits:
                        if self._closing:
                            break
                        self._sleeping = True
                if not hits:
                    self._signal.acquire()
                    continue
                self._commit(hits, waiters)
        finally:
            with contextlib.suppress(Exception):
                self._close_sync()
            self._call(_finish, self._done)

    def _commit(self, hits: list[Hit], waiters: list[asyncio.Future[None]]) -> None:
        error: Exception | None = None
        for attempt in range(2):  # a broken connection gets one reopen and retry
            try:
                self._write_sync(hits)
                error = None
                break
            except Exception as exc:
                error = exc
                if attempt == 0:
                    with contextlib.suppress(Exception):
                        self._close_sync()
                    try:
                        self._open_sync()
                    except Exception:
                        break
        if error is None:
            self.committed += len(hits)
            self._call(_resolve, waiters, None)
            return
        self._mark_down(error)
        self._call(_resolve, waiters, RecorderUnavailable(f"hits not committed: {error}"))

    def _reconnect(self) -> None:
        attempt = 0
        while self._down and not self._closing:
            if self._stop.wait(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]):
                return
            attempt += 1
            with contextlib.suppress(Exception):
                self._close_sync()
            try:
                self._open_sync()
                self._write_sync([])  # proves the database takes writes
            except Exception:
                continue
            self._down = False
            log.warning("recorder: the hits database is back after %d attempts", attempt)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(fn, *args)

    # -- on the writer thread ---------------------------------------------------------
    def _open_sync(self) -> None:
        self._file.open()

    def _write_sync(self, hits: list[Hit]) -> None:
        self._file.write(params_of(hits, self.anonymize_ip))

    def _close_sync(self) -> None:
        self._file.close()


def params_of(hits: list[Hit], anonymize_ip: bool) -> list[object]:
    """The hits as one flat list of INSERT parameters, `WIDTH` per hit."""
    return format_rows(list(chain.from_iterable(hits)), anonymize_ip)


def format_rows(fields: list[Any], anonymize_ip: bool) -> list[Any]:
    """Hits' fields laid end to end (as the writer socket carries them) turned, in place,
    into the INSERT's parameters: the stored values, `at` as SQLite's text."""
    return format_flat(fields, anonymize_ip, stamp)


class HitsFile:
    """The hits table of one SQLite file, for one thread: open, write batches, close."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path, self.synchronous = path, synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    def open(self) -> None:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=CHUNK + 8
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # No SQLite busy handler: it sleeps 25-100 ms between tries once the pipeline holds
        # the write lock for a while; `_begin` polls every few hundred microseconds instead.
        conn.execute("PRAGMA busy_timeout=0")
        self._conn = conn
        lock_path = self.path.with_name(self.path.name + ".hits-lock")
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def write(self, params: list[object]) -> None:
        """Insert the rows in `params` (`params_of`) and commit; an empty list only proves
        that the write lock can be taken."""
        conn = self._conn
        if conn is None:
            raise sqlite3.OperationalError("not connected")
        if not params:
            _begin(conn, timeout_s=1.0)
            conn.execute("ROLLBACK")
            return
        rows = len(params) // WIDTH
        lock = self._lock_fd
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # releases the GIL while it waits
        try:
            _begin(conn)
            try:
                for i in range(0, rows, CHUNK):
                    n = min(CHUNK, rows - i)
                    conn.execute(_INSERTS[n], params[i * WIDTH : (i + n) * WIDTH])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)
