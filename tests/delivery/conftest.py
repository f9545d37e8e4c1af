"""Fixtures for delivery tests: a company with leads, and real SMTP servers on loopback.

`scripted_smtp` is an aiosmtpd server whose replies a test chooses (a 451 first, a 550
5.1.1 for one address...), so retries and bounces are tested against a real socket.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from mailbeacon.app import create_app
from mailbeacon.compose.dkim_keys import generate_key
from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.delivery import Outbox, start_outbox
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, companies, leads, list_members, lists
from mailbeacon.tokens import Signer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ScriptedHandler:
    """Answers DATA with the next scripted reply (then 250), RCPT per address."""

    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(envelope.original_content or envelope.content)
        return "250 OK"


@pytest.fixture
def scripted_smtp() -> Iterator[tuple[ScriptedHandler, str]]:
    handler = ScriptedHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = start_outbox("127.0.0.1", free_port(), tmp_path / "outbox")
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def signer(settings: Settings) -> Signer:
    return Signer(settings.secret_keys)


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh RSA key and the DNS TXT record that publishes it."""
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    return path, generate_key(path).encode()


async def insert(db: Database, table: Any, **values: Any) -> int:
    async with db.begin() as conn:
        result = await conn.execute(table.insert().values(**values))
        return int(result.inserted_primary_key[0])


@pytest.fixture
async def company_id(db: Database) -> int:
    return await insert(db, companies, name="Acme", plan="trial", created_at=now())


@pytest.fixture
def make_lead(db: Database, company_id: int) -> Any:
    async def make(email: str, status: str = "subscribed", **fields: Any) -> int:
        return await insert(
            db, leads, company_id=company_id, email=email, status=status, created_at=now(), **fields
        )

    return make


CAMPAIGN = {
    "name": "Spring sale",
    "subject": "Hi {{first_name}}",
    "html": '<p>Sale! <a href="https://shop.example/sale">shop</a></p>',
    "status": "draft",
}


@pytest.fixture
def make_campaign(db: Database, company_id: int) -> Any:
    """A campaign whose list holds `lead_ids`."""

    async def make(lead_ids: list[int], **fields: Any) -> int:
        list_id = await insert(db, lists, company_id=company_id, name="Spring", created_at=now())
        for lead_id in lead_ids:
            member = {"list_id": list_id, "lead_id": lead_id, "company_id": company_id}
            await insert(db, list_members, added_at=now(), **member)
        values = CAMPAIGN | fields | {"company_id": company_id, "list_id": list_id}
        return await insert(db, campaigns, created_at=now(), **values)

    return make


@pytest.fixture
def smtp_settings(settings: Settings, scripted_smtp: Any) -> Settings:
    return settings.with_(smtp_url=scripted_smtp[1])


@pytest.fixture
async def api(smtp_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app over ASGI (no stages: a test runs the sender itself)."""
    app = create_app(smtp_settings, run_stages=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mb.test") as client:
        yield client


@pytest.fixture
async def key(db: Database, company_id: int) -> dict[str, str]:
    """A marketing manager's API key, as an Authorization header."""
    async with db.begin() as conn:
        user = await create_user(
            conn, company_id=company_id, email="mm@acme.example", role="marketing_manager"
        )
        return {"Authorization": f"Bearer {await create_api_key(conn, user)}"}
