"""One hits writer for every worker of `mailbeacon serve` on SQLite.

SQLite takes one writer at a time. With a writer per worker, every worker paid a commit
(and an fsync) of its own and waited for the others', and in each worker the writer
thread fought the event loop for the GIL: two workers answered fewer pixels than one.
So `serve` starts this process: workers send their hits over a Unix socket, and it
commits whatever every worker sent while the previous commit ran, in one transaction,
then tells each worker how many of its batches are durable. Group commit across
processes, with no lock between them and no thread beside their event loops.

Wire format, both ways little-endian, on an abstract Unix socket only this user may use:
worker -> writer: u32 length, then msgpack of a flat list of the batch's `Hit` fields
(the writer formats them, so the workers' loops do less); writer -> worker: one byte
(1 committed, 0 failed) and a u32 count of the worker's oldest batches it answers. A
worker's reply to a reader waits for that answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import selectors
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec

from mailbeacon.recorder.batch import Hit, RecorderUnavailable
from mailbeacon.recorder.columns import WIDTH
from mailbeacon.recorder.sqlite import HitsFile, format_rows

log = logging.getLogger("mailbeacon.recorder")

LENGTH = struct.Struct("<I")
ANSWER = struct.Struct("<BI")
MAX_FRAME = 64 * 1024 * 1024  # a worker's batch is a few KB; anything near this is broken
# How long a worker waits between attempts to reach the writer (seconds). A local socket
# refuses at once, so trying often costs nothing, and `serve` restarts a dead writer
# within a second or so: every pixel in between gets a 503.
RECONNECT_DELAYS = (0.05, 0.1, 0.2, 0.5)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list).decode


def address_for(database: Path) -> str:
    """An abstract socket name (no file to clean up) unique to this server and file,
    written with a leading "@" (as `ss` shows it) so it fits an environment variable."""
    return f"@mailbeacon-hits-{os.getpid()}-{abs(hash(str(database.resolve()))):x}"


def sockaddr(address: str) -> str:
    """The address as `bind`/`connect` take it: "@name" is the abstract "\\0name"."""
    return "\0" + address[1:] if address.startswith("@") else address


# -- the writer process ---------------------------------------------------------------
class _Worker:
    __slots__ = ("buffer", "sock", "waiting")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.waiting = 0  # complete batches read and not yet answered


def run_writer(
    database: str,
    address: str,
    *,
    anonymize_ip: bool = False,
    synchronous: str = "FULL",
    parent: int | None = None,
) -> None:
    """The writer process: until SIGTERM (then it drains what it has) or the parent dies."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: outlive workers
    parent = parent or os.getppid()  # given by the parent: it may die while we start
    hits = HitsFile(Path(database), synchronous)
    hits.open()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sockaddr(address))
    listener.listen(256)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    workers: dict[socket.socket, _Worker] = {}
    params: list[Any] = []
    deadline: float | None = None  # once stopping: how long connected workers may take
    try:
        while True:
            timeout = 0 if params else 0.5
            for key, _ in sel.select(timeout):
                if key.fileobj is listener:
                    _accept(listener, sel, workers)
                else:
                    worker = workers[key.fileobj]  # type: ignore[index]
                    if not _read(worker, params, anonymize_ip):
                        _drop(worker, sel, workers)
            if params:
                ok = _commit(hits, params)
                params = []
                answer = 1 if ok else 0
                for worker in workers.values():
                    if worker.waiting:
                        with contextlib.suppress(OSError):  # a worker that left hears nothing
                            worker.sock.sendall(ANSWER.pack(answer, worker.waiting))
                        worker.waiting = 0
            elif (stop and not workers) or os.getppid() != parent:
                return
            elif stop:  # workers are still connected; give them a moment, then go
                deadline = deadline or time.monotonic() + 10
                if time.monotonic() > deadline:
                    return
    finally:
        hits.close()
        listener.close()


def _accept(
    listener: socket.socket, sel: selectors.BaseSelector, workers: dict[socket.socket, _Worker]
) -> None:
    with contextlib.suppress(BlockingIOError):
        sock, _ = listener.accept()
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():  # an abstract socket has no file permissions: check the peer
            sock.close()
            return
        sock.setblocking(False)
        workers[sock] = _Worker(sock)
        sel.register(sock, selectors.EVENT_READ)


def _read(worker: _Worker, params: list[Any], anonymize_ip: bool) -> bool:
    """Take every complete batch the worker sent; False when it is gone or talks garbage."""
    try:
        while True:
            chunk = worker.sock.recv(1 << 20)
            if not chunk:
                return False
            worker.buffer += chunk
            if len(chunk) < 1 << 20:
                break
    except BlockingIOError:
        pass
    except OSError:
        return False
    buffer = worker.buffer
    start = 0
    while len(buffer) - start >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer, start)
        if size > MAX_FRAME:
            return False
        end = start + LENGTH.size + size
        if end > len(buffer):
            break
        try:
            fields = _decode(memoryview(buffer)[start + LENGTH.size : end])
        except msgspec.DecodeError:
            return False
        if len(fields) % WIDTH:
            return False
        try:
            params += format_rows(fields, anonymize_ip)
        except (TypeError, ValueError, AttributeError, OverflowError):
            return False
        worker.waiting += 1
        start = end
    del buffer[:start]
    return True


def _drop(
    worker: _Worker, sel: selectors.BaseSelector, workers: dict[socket.socket, _Worker]
) -> None:
    sel.unregister(worker.sock)
    worker.sock.close()
    del workers[worker.sock]


def _commit(hits: HitsFile, params: list[Any]) -> bool:
    for attempt in range(2):  # a broken connection gets one reopen and retry
        try:
            hits.write(params)
            return True
        except Exception as exc:
            if attempt == 1:
                log.error("hits writer: a batch was not committed (%s)", exc)
            with contextlib.suppress(Exception):
                hits.close()
            with contextlib.suppress(Exception):
                hits.open()
    return False


def main(argv: list[str] | None = None) -> None:
    """`python -m mailbeacon.recorder.writer DATABASE ADDRESS --parent PID`, as `serve`
    starts the writer: an interpreter with only this module's imports (not the whole
    command line, as a multiprocessing child would), so a restarted writer takes
    connections again in a fraction of a second even on a busy machine."""
    parser = argparse.ArgumentParser(prog="python -m mailbeacon.recorder.writer")
    parser.add_argument("database", help="the SQLite file")
    parser.add_argument("address", help="the socket to listen on (@name: abstract)")
    parser.add_argument("--parent", type=int, help="stop when this process is gone")
    parser.add_argument("--anonymize-ip", action="store_true")
    args = parser.parse_args(argv)
    # Named for `ps -o comm` and /proc, so it can be told apart from the workers.
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text("mb-hits-writer")
    run_writer(args.database, args.address, anonymize_ip=args.anonymize_ip, parent=args.parent)


# -- the worker's side ----------------------------------------------------------------
class WriterClient(asyncio.Protocol):
    """The recorder a worker uses under `serve`: each event-loop pass sends the hits it
    gathered as one batch; a batch's futures resolve when the writer answers for it."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.committed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._hits: list[Hit] = []
        self._dones: list[Callable[[bool], None]] = []  # one per hit, until sent
        self._sent: deque[list[Callable[[bool], None]]] = deque()  # sent, unanswered
        self._answers = bytearray()
        self._down = True
        self._closing = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._idle: asyncio.Event | None = None

    @property
    def available(self) -> bool:
        return not self._down

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        try:
            await self._connect()
        except OSError as exc:
            log.error("recorder: the hits writer is unreachable (%s); retrying", exc)
            self._reconnecting = self._loop.create_task(self._reconnect())

    async def _connect(self) -> None:
        assert self._loop is not None
        # connected here, not by the loop: uvloop refuses abstract addresses
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(sockaddr(self.address))  # a local socket connects at once
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        await self._loop.create_unix_connection(lambda: self, sock=sock)

    async def _reconnect(self) -> None:
        attempt = 0
        while self._down and not self._closing:
            await asyncio.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
            with contextlib.suppress(OSError):
                await self._connect()
        if not self._down:
            log.warning("recorder: the hits writer is back after %d attempts", attempt)

    async def record(self, hit: Hit) -> None:
        await self.submit(hit)

    def submit(self, hit: Hit) -> asyncio.Future[None]:
        """Queue `hit`; the future resolves once the writer has committed it."""
        loop = self._loop
        if loop is None:
            raise RecorderUnavailable("the hits writer is unavailable")
        fut = loop.create_future()
        self.submit_then(hit, partial(_settle, fut))
        return fut

    def submit_then(self, hit: Hit, done: Callable[[bool], None]) -> None:
        """Queue `hit`; `done(committed)` is called when the writer has answered for it,
        straight from the socket's callback (no future, no extra loop pass)."""
        loop = self._loop
        if self._down or self._closing or loop is None:
            raise RecorderUnavailable("the hits writer is unavailable")
        if not self._hits:
            loop.call_soon(self._send)
        self._hits.append(hit)
        self._dones.append(done)

    def _send(self) -> None:
        hits, dones = self._hits, self._dones
        self._hits, self._dones = [], []
        if not hits:
            return
        transport = self._transport
        if transport is None or transport.is_closing():
            _tell(dones, False)
            return
        frame = _encode(list(chain.from_iterable(hits)))  # the writer formats them
        transport.write(LENGTH.pack(len(frame)) + frame)
        self._sent.append(dones)

    async def close(self) -> None:
        """Send what is pending, wait for its answers (10 s at most), then disconnect."""
        if self._hits:
            self._send()
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        deadline = time.monotonic() + 10
        while self._sent and not self._down and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._down = False

    def data_received(self, data: bytes) -> None:
        answers = self._answers
        answers += data
        used = 0
        while len(answers) - used >= ANSWER.size:
            ok, count = ANSWER.unpack_from(answers, used)
            used += ANSWER.size
            for _ in range(min(count, len(self._sent))):
                dones = self._sent.popleft()
                if ok:
                    self.committed += len(dones)
                _tell(dones, bool(ok))
        del answers[:used]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        was_down, self._down = self._down, True
        while self._sent:
            _tell(self._sent.popleft(), False)
        if not was_down and not self._closing:
            log.error("recorder: the hits writer went away; retrying")
            if self._loop is not None:
                self._reconnecting = self._loop.create_task(self._reconnect())


def _tell(dones: list[Callable[[bool], None]], committed: bool) -> None:
    for done in dones:
        try:
            done(committed)
        except Exception:  # one caller's bug must not keep the others waiting
            log.exception("recorder: a commit callback failed")


def _settle(fut: asyncio.Future[None], committed: bool) -> None:
    if fut.done():  # its awaiting task was cancelled
        return
    if committed:
        fut.set_result(None)
    else:
        fut.set_exception(RecorderUnavailable("the hits were not committed"))


if __name__ == "__main__":
    main()
