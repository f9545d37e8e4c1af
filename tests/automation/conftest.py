"""Fixtures for the automation stories: the real server in its own process, a real SMTP
server and a real webhook receiver on loopback, and a company to act for.

Events are written straight into `events` (as enrich would write them, with their
verdicts), so each story controls exactly what the pipeline sees.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from automation_harness import Hooks, Mailbox, Server, World, free_port, seed

from mailbeacon.store import Database


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, str]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.append({"path": self.path, "headers": dict(self.headers), "body": raw})
            self.send_response(500 if self.path.startswith("/fail") else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hooks(f"http://127.0.0.1:{server.server_address[1]}", got)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def world(
    db_url: str, smtp: tuple[Mailbox, str], tmp_path: Path
) -> AsyncIterator[tuple[World, Server]]:
    db = Database(db_url)
    server = Server(db_url, smtp[1], tmp_path / "server.log")
    company, key, owner, owner_email, campaign, sales_key = await seed(db)
    server.start()
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    try:
        yield World(db, api, company, owner, owner_email, sales_key, campaign), server
    finally:
        api.close()
        server.stop()
        await db.dispose()
