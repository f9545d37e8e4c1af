"""The pipeline process: every stage (`stages`), each kept running by `supervise`.

`serve` starts it beside its HTTP workers (`cli.serving`), `mailbeacon pipeline` on its
own; with several of them (machines) each stage's lease lets one process run it at a
time (`runner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from mailbeacon.api.context import Services
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.pipeline.stages import stages
from mailbeacon.settings import Settings
from mailbeacon.store import Database

log = logging.getLogger("mailbeacon")

PIPELINE_NICE = 10  # the pipeline process runs at this CPU priority below the workers


def name_process(name: str) -> None:
    """Name this process as `ps -o comm`, `top` and /proc show it (Linux), so an operator
    (and the supervision test) can tell the worker, pipeline and hits writer apart."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])


def run_pipeline(settings: Settings, parent: int | None = None) -> None:
    """The pipeline process: every stage, until SIGTERM (or SIGINT when run on its own,
    `mailbeacon pipeline`) or the death of `parent`, the `serve` that started it.

    The stages share no event loop with the edge: a stage's query would otherwise hold
    up every pixel waiting behind it (bench/edge.py measured 0.3k req/s that way).
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if parent is not None:  # started by `serve`, beside its workers
        name_process("mb-pipeline")
        # Ctrl-C reaches the whole group; `serve` stops this process itself once its
        # workers are done (stopping at once would look like a crash to its supervisor).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The edge answers readers now; the stages only have to keep up within seconds. On a
    # machine the two share, the scheduler gives the HTTP workers the CPU first.
    with contextlib.suppress(OSError):
        os.nice(PIPELINE_NICE)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        if parent is None:
            loop.add_signal_handler(signal.SIGINT, stop.set)
        # The parent's pid comes from the parent: read here, it would already be 1 (init)
        # if the server died while this process was starting, and the orphan would
        # wait for a parent that is long gone.
        server = parent or os.getppid()
        svc = Services.build(settings)
        tasks = start(svc.db, settings, stop)
        # An orphan (the server was killed with -9) stops by itself.
        while not stop.is_set() and os.getppid() == server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
        stop.set()
        await finish(tasks)
        await svc.db.dispose()

    asyncio.run(main())


def start(db: Database, settings: Settings, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Every stage as a task of the running loop, until `stop` is set."""
    return [asyncio.create_task(supervise(s, db, settings, stop)) for s in stages(db, settings)]


async def finish(tasks: list[asyncio.Task[None]], timeout: float = 5) -> None:
    """Wait for stopped stages to end (releasing their leases), each at most `timeout`."""
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=timeout)


async def supervise(stage: Stage, db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Keep a stage running: a failing batch the runner survives; should the stage itself
    fail (its setup, a bug in the runner), log it, wait a second, start it again."""
    while not stop.is_set():
        try:
            await run_stage(stage, db, settings, stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stage %s failed; restarting in 1 s", stage.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
