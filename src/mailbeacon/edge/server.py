"""`mailbeacon serve`: uvicorn with uvloop and httptools (`edge.protocol`), N workers.

Each worker builds its own app from the environment (`mailbeacon.app:app_from_env`), so
each has its own hits writer; SQLite serialises their commits on its write lock, and
PostgreSQL takes them in parallel. The access log is off: the hits table is the log.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from mailbeacon.edge.protocol import EdgeProtocol
from mailbeacon.settings import Settings, from_env

FACTORY = "mailbeacon.app:app_from_env"


def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Run `workers` HTTP processes (edge, API, dashboard); they run no pipeline stages:
    `mailbeacon serve` starts those in a process of their own."""
    # Worker processes read settings from the environment; carry the CLI's choices there.
    os.environ["MAILBEACON_DATABASE_URL"] = settings.database_url
    uvicorn.run(
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
    )


def main() -> None:
    """`python -m mailbeacon.edge.server`: the HTTP workers alone, no pipeline (bench)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve(from_env(), args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
