"""The API's own fixture: the whole app on a real socket, seeded with one company."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller

from mailbeacon.app import create_app
from mailbeacon.automation import event_webhooks, rules
from mailbeacon.automation.model import RuleIn
from mailbeacon.crm import campaigns as crm_campaigns
from mailbeacon.crm import leads as crm_leads
from mailbeacon.crm import lists as crm_lists
from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import Principal, create_api_key, create_user
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade

TEST_KEYS = (("t1", b"test-secret-one"),)


class Sink:
    """An SMTP server that accepts everything and keeps nothing."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def _seed(url: str) -> str:
    """A company with a marketing manager's API key, three leads on a list, a draft
    campaign and a rule; the key."""
    db = Database.unpooled(url)
    try:
        await upgrade(db)
        async with db.begin() as conn:
            company = await create_company(conn, "Acme", "ultimate")
            email = "mia@acme.test"
            user = await create_user(
                conn, company_id=company, email=email, role="marketing_manager"
            )
            key = await create_api_key(conn, user)
            who = Principal(
                user_id=user, company_id=company, role="marketing_manager", plan="ultimate",
                email=email,
            )  # fmt: skip
            ids = [
                (await crm_leads.create_lead(conn, who, email=f"lead{i}@example.com"))["id"]
                for i in range(3)
            ]
            the_list = await crm_lists.create_list(conn, who, "Prospects")
            await crm_lists.add_leads(conn, who, the_list["id"], ids)
            await crm_campaigns.create_campaign(
                conn, who, name="Spring", subject="Spring offer", html="<p>Hi</p>",
                list_id=the_list["id"],
            )  # fmt: skip
            openers = RuleIn.model_validate(
                {
                    "name": "Openers",
                    "trigger": {"type": "opened"},
                    "actions": [{"type": "add_score", "points": 5}],
                }
            )
            await rules.create_rule(conn, who, openers)
            hook = event_webhooks.EventWebhookIn(
                url="https://hooks.example.com/in", secret="s" * 8, events=["open"]
            )
            await event_webhooks.create(conn, who, hook)
        return key
    finally:
        await db.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_apart(coro: Any) -> Any:
    """Run a coroutine on a loop of its own: the test session's loop may be running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app on a real socket in a thread of its own: (base URL, API key)."""
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    db_url = f"sqlite:///{tmp / 'mailbeacon.db'}"
    key = _run_apart(_seed(db_url))
    smtp = Controller(Sink(), hostname="127.0.0.1", port=_free_port())
    smtp.start()
    settings_ = Settings(
        database_url=db_url,
        base_url="http://127.0.0.1:8000",
        secret_keys=TEST_KEYS,
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        var_dir=tmp / "var",
    )
    config = uvicorn.Config(
        create_app(settings_, run_stages=False), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # two cores shared by many test runs
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        thread.join(10)
        smtp.stop()
