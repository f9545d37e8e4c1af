"""`mailbeacon serve`: uvicorn with uvloop and httptools (`edge.protocol`), N workers.

Each worker builds its own app from the environment (`mailbeacon.app:app_from_env`). On
SQLite every worker sends its hits to the one writer process `cli.serving` starts
(`recorder.writer`); on PostgreSQL each worker writes its own. The access log is off:
the hits table is the log.
"""

from __future__ import annotations

import os

import uvicorn

from mailbeacon.edge.protocol import EdgeProtocol
from mailbeacon.settings import Settings

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
