"""Serving: the HTTP workers in front; beside them the pipeline stages and, on SQLite,
the one hits writer the workers share (`recorder.writer`), each in a process of its own."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process
import os
import socket
import time

from mailbeacon.app import run_pipeline
from mailbeacon.edge.server import serve
from mailbeacon.recorder.writer import address_for, run_writer, sockaddr
from mailbeacon.settings import Settings
from mailbeacon.store.db import sqlite_path

# spawn, not fork: a child must not inherit the parent's sockets or threads.
_spawn = multiprocessing.get_context("spawn")


def start_pipeline(settings: Settings) -> multiprocessing.process.BaseProcess:
    process = _spawn.Process(
        target=run_pipeline, args=(settings, os.getpid()), name="mailbeacon-pipeline"
    )
    process.start()
    return process


def start_hits_writer(settings: Settings) -> tuple[multiprocessing.process.BaseProcess, str]:
    """Start the hits writer for the SQLite file; return it once it takes connections."""
    path = sqlite_path(settings.database_url)
    assert path is not None
    address = address_for(path)
    process = _spawn.Process(
        target=run_writer,
        args=(str(path), address),
        kwargs={"anonymize_ip": settings.anonymize_ip, "parent": os.getpid()},
        name="mailbeacon-hits-writer",
    )
    process.start()
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(sockaddr(address))
            return process, address
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the hits writer did not start (see its error above)")
        time.sleep(0.02)


def serve_all(settings: Settings, host: str, port: int, workers: int, *, pipeline: bool) -> None:
    """Serve until interrupted; the helper processes stop with the server (and by
    themselves if the server is killed outright)."""
    writer = None
    if sqlite_path(settings.database_url) is not None:
        writer, address = start_hits_writer(settings)
        os.environ["MAILBEACON_HITS_WRITER"] = address  # the workers read it at start
        settings = settings.with_(hits_writer=address)
    stages = start_pipeline(settings) if pipeline else None
    try:
        serve(settings, host, port, workers)
    finally:
        # the writer goes last: workers send it their last hits while they shut down
        for process in (stages, writer):
            if process is not None:
                process.terminate()
                process.join(timeout=15)
