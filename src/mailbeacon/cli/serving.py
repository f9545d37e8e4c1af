"""Serving: the HTTP workers in front, the pipeline stages in a process of their own."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process

from mailbeacon.app import run_pipeline
from mailbeacon.edge.server import serve
from mailbeacon.settings import Settings


def start_pipeline(settings: Settings) -> multiprocessing.process.BaseProcess:
    # spawn, not fork: the child must not inherit the parent's sockets or threads.
    process = multiprocessing.get_context("spawn").Process(
        target=run_pipeline, args=(settings,), name="mailbeacon-pipeline"
    )
    process.start()
    return process


def serve_all(settings: Settings, host: str, port: int, workers: int, *, pipeline: bool) -> None:
    """Serve until interrupted; the pipeline process stops with the server (and by
    itself if the server is killed outright)."""
    stages = start_pipeline(settings) if pipeline else None
    try:
        serve(settings, host, port, workers)
    finally:
        if stages is not None:
            stages.terminate()
            stages.join(timeout=10)
