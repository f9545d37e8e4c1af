"""`mailbeacon serve`: uvicorn with uvloop and httptools, N worker processes.

Each worker builds its own app from the environment (`mailbeacon.app:app_from_env`), so
each has its own hits writer; SQLite serialises their commits on its write lock, and
PostgreSQL takes them in parallel. The access log is off: the hits table is the log.
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from starlette.types import ASGIApp

from mailbeacon.settings import Settings, from_env

FACTORY = "mailbeacon.app:app_from_env"
HTTP_ONLY_FACTORY = "mailbeacon.edge.server:app_without_pipeline"


def app_without_pipeline() -> ASGIApp:
    """A worker that serves HTTP only: the pipeline stages (enrich, rollups, automation)
    run elsewhere. Sharing the event loop with them costs the edge most of its speed
    (see bench/edge.py), so a busy edge should run this way."""
    from mailbeacon.app import create_app  # the composition root, imported by the worker

    return create_app(from_env(), run_stages=False)


def serve(settings: Settings, host: str, port: int, workers: int, pipeline: bool = True) -> None:
    """Run `workers` processes; with `pipeline=False` they run no background stages."""
    # Worker processes read settings from the environment; carry the CLI's choices there.
    os.environ["MAILBEACON_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        FACTORY if pipeline else HTTP_ONLY_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=max(1, workers),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from any loopback peer; the edge
        # decides that itself, from MAILBEACON_TRUSTED_PROXIES only.
        proxy_headers=False,
        log_level="warning",
        backlog=4096,
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    """`python -m mailbeacon.edge.server`: the same server without the CLI (tests, bench)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-pipeline", action="store_true", help="run no background stages")
    args = parser.parse_args()
    serve(from_env(), args.host, args.port, args.workers, pipeline=not args.no_pipeline)


if __name__ == "__main__":
    main()
