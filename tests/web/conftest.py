"""Dashboard fixtures: the known-mix campaign with users who can log in, over ASGI or
served on a real socket the way `mailbeacon serve` serves it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from dashboard_helpers import PASSWORD, Serve, Site

from mailbeacon.analytics import rollups
from mailbeacon.app import create_app
from mailbeacon.edge.protocol import EdgeProtocol
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from testkit.sample import known_mix


@pytest.fixture
async def site(settings: Settings) -> Site:
    db = Database(settings.database_url)
    try:
        async with db.begin() as conn:
            world = await known_mix(conn, password=PASSWORD)
        await rollups.catch_up(db)
    finally:
        await db.dispose()
    return Site(world=world, settings=settings)


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(site.settings, run_stages=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@contextlib.contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The whole app in uvicorn on a free port, with `serve`'s protocol (`EdgeProtocol`,
    which hands the dashboard and API to uvicorn's httptools) and its proxy choice."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, run_stages=False),
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http=EdgeProtocol,
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
async def serve_site(site: Site) -> AsyncIterator[Serve]:
    """Start the site's server with some settings changed; the base URL comes back."""
    running: list[contextlib.AbstractContextManager[str]] = []

    async def start(**changes: object) -> str:
        cm = serve(site.settings.with_(**changes))
        running.append(cm)
        return await asyncio.to_thread(cm.__enter__)

    try:
        yield start
    finally:
        for cm in running:
            await asyncio.to_thread(cm.__exit__, None, None, None)


@pytest.fixture
async def served(serve_site: Serve) -> str:
    """The site on a real socket, with a 1 s head timeout."""
    return await serve_site(head_timeout_seconds=1.0)
