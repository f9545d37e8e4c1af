"""Edge fixtures: a seeded message, and the edge served over real HTTP on a free port.

`edge_server` runs uvicorn in a thread with the edge composed exactly as `mailbeacon.app`
does (real recorder, real link resolver), but with recording `actions` so the forms can
be checked without compose or delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, insert, select

from mailbeacon.edge import ActionUnavailable, Friend, create_edge
from mailbeacon.edge.protocol import EdgeProtocol
from mailbeacon.recorder import open_recorder
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.links import LinkResolver
from mailbeacon.store.schema import companies, hits, leads, message_links, messages, plans
from mailbeacon.tokens import Kind, Signer, Token

TEST_KEYS = (("t1", b"test-secret-one"), ("t0", b"test-secret-old"))  # as tests/conftest.py

LINKS = {
    1: ("https://example.com/pricing?plan=pro", "link"),
    2: ("https://example.com/trap", "honeypot"),
    3: ("https://example.com/ünïcode path?q=a b", "link"),
    4: ("javascript:alert(1)", "link"),
}


@dataclass
class Seeded:
    """One company, lead and sent message with its links, and tokens for it."""

    url: str
    company_id: int
    lead_id: int
    message_id: int
    signer: Signer = field(default_factory=lambda: Signer(TEST_KEYS))

    def token(self, kind: Kind, link_index: int = 0, **changes: int) -> str:
        ids = {"company_id": self.company_id, "message_id": self.message_id}
        ids |= {"lead_id": self.lead_id, **changes}
        return self.signer.sign(Token(kind, link_index=link_index, **ids))

    async def hits(self, **where: Any) -> list[dict[str, Any]]:
        db = Database.unpooled(self.url)
        query = select(hits).where(hits.c.message_id == self.message_id).order_by(hits.c.id)
        for name, value in where.items():
            query = query.where(hits.c[name] == value)
        async with db.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]
        await db.dispose()
        return rows

    async def count(self) -> int:
        db = Database.unpooled(self.url)
        query = select(func.count()).select_from(hits)
        async with db.connect() as conn:
            n = int(
                (await conn.execute(query.where(hits.c.message_id == self.message_id))).scalar_one()
            )
        await db.dispose()
        return n


async def seed(url: str) -> Seeded:
    db = Database.unpooled(url)
    async with db.begin() as conn:
        if (
            await conn.execute(select(plans.c.name).where(plans.c.name == "trial"))
        ).first() is None:
            await conn.execute(insert(plans).values(name="trial", label="Trial"))
        cid = (
            await conn.execute(
                insert(companies).values(name="Acme", plan="trial", created_at=now())
            )
        ).inserted_primary_key[0]
        lid = (
            await conn.execute(
                insert(leads).values(company_id=cid, email="ada@example.com", created_at=now())
            )
        ).inserted_primary_key[0]
        mid = (
            await conn.execute(
                insert(messages).values(
                    company_id=cid, lead_id=lid, subject="Hi", html="<p>hi</p>", created_at=now()
                )
            )
        ).inserted_primary_key[0]
        for index, (link, kind) in LINKS.items():
            await conn.execute(
                insert(message_links).values(
                    message_id=mid, link_index=index, company_id=cid, url=link, kind=kind
                )
            )
    await db.dispose()
    return Seeded(url, cid, lid, mid)


@pytest.fixture
async def seeded(db_url: str) -> Seeded:
    return await seed(db_url)


@pytest.fixture
async def seeded_sqlite(sqlite_url: str) -> Seeded:
    return await seed(sqlite_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    """A free TCP port on loopback."""
    return free_port()


class FakeActions:
    """Remembers what the edge asked for; `fail` makes every action unavailable."""

    def __init__(self) -> None:
        self.unsubscribed: list[Token] = []
        self.forwarded: list[tuple[Token, Friend]] = []
        self.fail = False
        self.recorded_forwards = 0  # what other workers (or a restart) already recorded

    async def unsubscribe(self, token: Token) -> None:
        if self.fail:
            raise ActionUnavailable("down")
        self.unsubscribed.append(token)

    async def forward(self, token: Token, friend: Friend) -> None:
        if self.fail:
            raise ActionUnavailable("down")
        self.forwarded.append((token, friend))

    async def forwards_since(self, token: Token, seconds: float) -> int:
        return self.recorded_forwards


@dataclass
class LiveEdge:
    base: str
    actions: FakeActions
    recorder: Any


class _WithLifespan:
    """The edge plus the recorder's start and stop, as `mailbeacon.app` wires them."""

    def __init__(self, edge: Any, recorder: Any, db: Database) -> None:
        self.edge, self.recorder, self.db = edge, recorder, db

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.recorder.start()
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await self.recorder.close()
                    await self.db.dispose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.edge(scope, receive, send)


@contextlib.contextmanager
def serve_edge(
    settings: Settings, http: Any = "httptools", keep_alive_s: int = 5
) -> Iterator[LiveEdge]:
    db = Database(settings.database_url)
    recorder = open_recorder(settings)
    actions = FakeActions()
    edge = create_edge(
        signer=Signer(settings.secret_keys),
        recorder=recorder,
        links=LinkResolver(db),
        actions=actions,
        form_secret=settings.secret_keys[0][1],
        trusted_proxies=settings.trusted_proxies,
    )
    port = free_port()
    config = uvicorn.Config(
        _WithLifespan(edge, recorder, db),
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http=http,
        lifespan="on",
        timeout_keep_alive=keep_alive_s,
        access_log=False,
        proxy_headers=False,  # as `serve`: only the edge decides whom to believe
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the edge server did not start")
        time.sleep(0.02)
    try:
        yield LiveEdge(f"http://127.0.0.1:{port}", actions, recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def edge_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """The HTTP behaviour does not depend on the engine: SQLite (recorder tests do both)."""
    return Settings(database_url=sqlite_url, secret_keys=TEST_KEYS, var_dir=tmp_path / "var")


@pytest.fixture(params=["asgi", "quick"])
async def live(edge_settings: Settings, request: pytest.FixtureRequest) -> Any:
    """The edge over real HTTP, twice: through uvicorn's own protocol and the ASGI edge,
    and through `EdgeProtocol` (what `serve` runs), which answers pixels and cached
    clicks itself. Every edge test must hold for both."""
    http = EdgeProtocol if request.param == "quick" else "httptools"
    # uvicorn runs its own loop in a thread; start it off this loop so neither blocks
    cm = serve_edge(edge_settings, http)
    server = await asyncio.to_thread(cm.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)


@pytest.fixture
async def quick(edge_settings: Settings) -> Any:
    """The edge behind `EdgeProtocol` alone, with a 1 s keep-alive (raw-socket tests)."""
    cm = serve_edge(edge_settings, EdgeProtocol, keep_alive_s=1)
    server = await asyncio.to_thread(cm.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(cm.__exit__, None, None, None)
