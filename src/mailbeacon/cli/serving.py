"""Serving: the HTTP workers in front; beside them the pipeline stages and, on SQLite,
the one hits writer the workers share (`recorder.writer`), each in a process of its own.

`serve` supervises what it starts: uvicorn replaces a dead worker (`edge.server`), and
a thread here replaces a dead hits writer or pipeline within a second, saying so in the
log. The workers reconnect to the new writer by themselves; a hit answered 200 was
committed before the writer died, and one in flight got a 503 and no promise.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import FrameType
from typing import Protocol

from mailbeacon.edge.server import serve
from mailbeacon.pipeline.process import run_pipeline
from mailbeacon.recorder.writer import address_for, sockaddr
from mailbeacon.settings import Settings
from mailbeacon.store.db import sqlite_path

log = logging.getLogger("mailbeacon.serve")

# spawn, not fork: a child must not inherit the parent's sockets or threads.
_spawn = multiprocessing.get_context("spawn")


class Process(Protocol):
    """What the supervisor needs of a process: a `multiprocessing` one or a `Child`."""

    @property
    def pid(self) -> int | None: ...
    @property
    def exitcode(self) -> int | None: ...
    def is_alive(self) -> bool: ...
    def terminate(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


POLL_S = 0.2  # how often the supervisor looks at its processes
# A process that dies this soon after its start is failing, not unlucky: wait before
# the next start, longer each time (seconds), instead of spinning.
QUICK_DEATH_S = 5.0
BACKOFF_S = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
# A process that exited by itself (code 0) was most likely told to stop along with the
# server: give the server's own signal handler this long to say so before restarting.
CLEAN_EXIT_GRACE_S = 1.0


def start_pipeline(settings: Settings) -> multiprocessing.process.BaseProcess:
    process = _spawn.Process(
        target=run_pipeline, args=(settings, os.getpid()), name="mailbeacon-pipeline"
    )
    process.start()
    return process


class Child:
    """A helper run as a plain subprocess, with the `multiprocessing.Process` methods
    the supervisor (and the tests) use: `pid`, `exitcode`, `is_alive`, `terminate`,
    `kill`, `join`."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        self.popen.terminate()  # does nothing once it is reaped

    def kill(self) -> None:
        self.popen.kill()

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)


def start_hits_writer(settings: Settings, address: str | None = None) -> tuple[Child, str]:
    """Start the hits writer for the SQLite file; return it once it takes connections.
    A replacement takes the `address` of the one before, where the workers reconnect."""
    path = sqlite_path(settings.database_url)
    assert path is not None
    address = address or address_for(path)
    command = [sys.executable, "-m", "mailbeacon.recorder.writer", str(path), address]
    command += ["--parent", str(os.getpid())]
    if settings.anonymize_ip:
        command.append("--anonymize-ip")
    process = Child(subprocess.Popen(command))
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(sockaddr(address))
            return process, address
        if not process.is_alive() or time.monotonic() > deadline:
            process.kill()
            process.join()
            raise RuntimeError("the hits writer did not start (see its error above)")
        time.sleep(0.02)


@dataclass
class Helper:
    """A process `serve` keeps running: how to start it, and the one running now."""

    name: str
    start: Callable[[], Process]
    process: Process
    started_at: float = 0.0
    quick_deaths: int = 0


class Supervisor(threading.Thread):
    """Restart a helper process that died, until `stopping` is set; one log line each."""

    def __init__(self, helpers: list[Helper], stopping: threading.Event) -> None:
        super().__init__(name="mailbeacon-supervisor", daemon=True)
        self.helpers, self.stopping = helpers, stopping
        for helper in helpers:
            helper.started_at = time.monotonic()

    def run(self) -> None:
        while not self.stopping.wait(POLL_S):
            for helper in self.helpers:
                if not helper.process.is_alive() and not self.stopping.is_set():
                    self._restart(helper)

    def _restart(self, helper: Helper) -> None:
        old = helper.process
        if old.exitcode == 0 and self.stopping.wait(CLEAN_EXIT_GRACE_S):
            return
        lived = time.monotonic() - helper.started_at
        helper.quick_deaths = helper.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        delay = BACKOFF_S[min(helper.quick_deaths, len(BACKOFF_S) - 1)]
        log.warning(
            "%s (pid %s) died (%s); starting it again%s",
            helper.name,
            old.pid,
            _how(old.exitcode),
            f" in {delay:g} s" if delay else "",
        )
        if self.stopping.wait(delay):
            return
        helper.started_at = time.monotonic()
        try:
            helper.process = helper.start()
        except Exception as exc:  # it is tried again on the next pass, after the backoff
            log.error("%s did not start again: %s", helper.name, exc)
            return
        log.warning("%s is back (pid %s)", helper.name, helper.process.pid)


def _start_writer_at(settings: Settings, address: str) -> Process:
    return start_hits_writer(settings, address)[0]


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _exit_on_sigterm(sig: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the SIGTERM it handled once it has stopped; exit through the
    # `finally` below then, so the helpers are stopped in order, not left to notice.
    raise SystemExit(0)  # a stop that was asked for


def serve_all(settings: Settings, host: str, port: int, workers: int, *, pipeline: bool) -> None:
    """Serve until interrupted, keeping the helper processes running; they stop with the
    server (and by themselves if the server is killed outright)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    helpers: list[Helper] = []
    stopping = threading.Event()
    supervisor = None
    try:
        if sqlite_path(settings.database_url) is not None:
            writer, address = start_hits_writer(settings)
            os.environ["MAILBEACON_HITS_WRITER"] = address  # the workers read it at start
            settings = settings.with_(hits_writer=address)
            again = partial(_start_writer_at, settings, address)
            helpers.append(Helper("hits writer", again, writer))
        if pipeline:
            again = partial(start_pipeline, settings)
            helpers.append(Helper("pipeline", again, again()))
        supervisor = Supervisor(helpers, stopping)
        supervisor.start()
        serve(settings, host, port, workers, stopping)
    finally:
        stopping.set()
        if supervisor is not None:
            supervisor.join()
        # the writer goes last: workers send it their last hits while they shut down
        for helper in reversed(helpers):
            helper.process.terminate()
            helper.process.join(timeout=15)
