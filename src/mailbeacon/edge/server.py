"""`mailbeacon serve`: uvicorn with uvloop and httptools (`edge.protocol`), N workers.

Each worker builds its own app from the environment (`mailbeacon.app:app_from_env`). On
SQLite every worker sends its hits to the one writer process `cli.serving` starts
(`recorder.writer`); on PostgreSQL each worker writes its own. The access log is off:
the hits table is the log.

With several workers, uvicorn's supervisor starts a new worker when one dies; here it
also says so in the log, and tells `cli.serving` (through `stopping`) when a signal asks
the server to stop, so the helper processes are not restarted while it shuts down.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from mailbeacon.edge.protocol import EdgeProtocol
from mailbeacon.settings import Settings

FACTORY = "mailbeacon.app:app_from_env"

log = logging.getLogger("mailbeacon.serve")


class _Server(uvicorn.Server):
    """One worker, in this process."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)


class _Workers(Multiprocess):
    """uvicorn's supervisor of N worker processes, which logs a worker's replacement."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], stopping: threading.Event
    ) -> None:
        super().__init__(config, sockets)
        self.stopping = stopping
        # uvicorn queues a signal for its loop (looked at every 0.5 s); a stop is seen at
        # once instead, before a process that got the same signal can be seen gone.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop_signal)

    def _stop_signal(self, sig: int, frame: FrameType | None) -> None:
        # Set here, not in uvicorn's loop: a worker that got the same signal (Ctrl-C,
        # or a service manager's SIGTERM to the group) must not be replaced meanwhile.
        self.stopping.set()
        self.should_exit.set()

    def keep_subprocess_alive(self) -> None:
        before = [(p.pid, p.process) for p in self.processes]
        super().keep_subprocess_alive()
        for (pid, old), new in zip(before, self.processes, strict=False):
            if new.process is not old:
                log.warning(
                    "HTTP worker (pid %s) died (exit code %s); started pid %s",
                    pid,
                    old.exitcode,
                    new.pid,
                )


def serve(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    stopping: threading.Event | None = None,
) -> None:
    """Run `workers` HTTP processes (edge, API, dashboard) until a signal stops them;
    they run no pipeline stages: `mailbeacon serve` starts those in a process of their
    own. `stopping` is set as soon as a signal asks the server to stop."""
    # Worker processes read settings from the environment; carry the CLI's choices there.
    os.environ["MAILBEACON_DATABASE_URL"] = settings.database_url
    stopping = stopping or threading.Event()
    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=max(1, workers),
        loop="uvloop",
        http=EdgeProtocol,  # httptools, with the pixel and click answered before ASGI
        lifespan="on",
        access_log=False,
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer; the edge
        # decides that itself, from MAILBEACON_TRUSTED_PROXIES only.
        proxy_headers=False,
        log_level="warning",
        backlog=4096,
        timeout_graceful_shutdown=10,
        # uvicorn kills a worker that does not answer its ping in this time. A new
        # worker answers only once it has imported everything, which takes more than
        # uvicorn's 5 s on a busy machine: it would be killed, again and again.
        timeout_worker_healthcheck=30,
    )
    # What `uvicorn.run` does, with the two supervisors above in place of its own.
    try:
        if config.workers > 1:
            _Workers(config, [config.bind_socket()], stopping).run()
        else:
            server = _Server(config, stopping)
            server.run()
            if not server.started:
                raise SystemExit(3)  # uvicorn's STARTUP_FAILURE
    except KeyboardInterrupt:
        pass
