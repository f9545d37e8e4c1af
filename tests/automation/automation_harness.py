"""Helpers of the automation stories: the server process, the mailbox, the webhook
receiver, and a company to act for (`World`)."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, events, leads, messages

SERVE = Path(__file__).with_name("serve.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Any], timeout: float = 15.0, what: str = "it") -> Any:
    """Poll `check` (sync or async) until it is truthy; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Mailbox:
    """Everything the SMTP server accepted, parsed."""

    received: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.received if address in (m["To"] or "")]


@dataclass
class Hooks:
    """A webhook receiver: POSTs to /ok answer 200, to /fail answer 500."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


class Server:
    """The app in a subprocess; `kill()` is kill -9, `start()` brings it back."""

    def __init__(self, db_url: str, smtp_url: str, log: Path) -> None:
        self.db_url, self.smtp_url, self.log = db_url, smtp_url, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVE), self.db_url, str(self.port), self.smtp_url],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._up, 180, "the server to answer")  # 2 cores shared by many runs

    def _up(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.url}/api/openapi.json", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no lifespan shutdown, no lease release
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class World:
    """One company: an admin's API client, a salesperson who owns the leads, a campaign."""

    db: Database
    api: httpx.Client
    company_id: int
    owner_id: int
    owner_email: str
    sales_key: str
    campaign_id: int

    async def lead(self, email: str) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                insert(leads)
                .values(
                    company_id=self.company_id,
                    email=email,
                    owner_user_id=self.owner_id,
                    score=0,
                    status="subscribed",
                    created_at=now(),
                )
                .returning(leads.c.id)
            )
        return int(result.scalar_one())

    async def message(self, lead_id: int, sent_at: Any = None) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                insert(messages)
                .values(
                    company_id=self.company_id,
                    lead_id=lead_id,
                    campaign_id=self.campaign_id,
                    subject="Spring offer",
                    html="<p>hi</p>",
                    status="sent",
                    created_at=now(),
                    sent_at=sent_at or now(),
                )
                .returning(messages.c.id)
            )
        return int(result.scalar_one())

    async def event(self, message_id: int, lead_id: int, **fields: Any) -> int:
        row = {
            "type": "open",
            "at": now(),
            "company_id": self.company_id,
            "message_id": message_id,
            "lead_id": lead_id,
            "campaign_id": self.campaign_id,
            "verdict": "human",
            "reason": "a mail client fetched the pixel",
            "inferred": False,
            "forwarded": False,
            "client": "Thunderbird",
        }
        row.update(fields)
        async with self.db.begin() as conn:
            result = await conn.execute(insert(events).values(**row).returning(events.c.id))
        return int(result.scalar_one())

    def rule(self, **body: Any) -> dict[str, Any]:
        body.setdefault("name", "a rule")
        answer = self.api.post("/api/v1/rules", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def runs(self, rule_id: int) -> list[dict[str, Any]]:
        return self.api.get(f"/api/v1/rules/{rule_id}/runs").json()  # type: ignore[no-any-return]

    def score(self, lead_id: int) -> int:
        return int(self.api.get(f"/api/v1/leads/{lead_id}").json()["score"])


async def seed(db: Database) -> tuple[int, str, int, str, int, str]:
    async with db.begin() as conn:
        company = await create_company(conn, "Acme", "ultimate")
        admin = await create_user(
            conn, company_id=company, email="ada@acme.test", role="administrator"
        )
        owner_email = "sam@acme.test"
        sales = await create_user(conn, company_id=company, email=owner_email, role="salesperson")
        key = await create_api_key(conn, admin)
        sales_key = await create_api_key(conn, sales)
        result = await conn.execute(
            insert(campaigns)
            .values(
                company_id=company,
                name="Spring",
                subject="Spring offer",
                html="<p>hi</p>",
                status="sent",
                created_at=now(),
            )
            .returning(campaigns.c.id)
        )
        campaign = int(result.scalar_one())
    return company, key, sales, owner_email, campaign, sales_key


def body_json(hook: dict[str, Any]) -> dict[str, Any]:
    return json.loads(hook["body"])  # type: ignore[no-any-return]


async def stranger_key(db: Database) -> str:
    """An administrator's API key in another company."""
    async with db.begin() as conn:
        company = await create_company(conn, "Globex", "ultimate")
        admin = await create_user(
            conn, company_id=company, email="gil@globex.test", role="administrator"
        )
        return await create_api_key(conn, admin)
