"""A real `mailbeacon serve` process, a real SMTP server catching its mail, real HTTP."""

from __future__ import annotations

import email
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """What the SMTP server received, parsed."""

    received: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def wait(self, count: int, timeout: float = 10) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"{len(self.received)} mails arrived, not {count}"
        return self.received


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


@dataclass
class Live:
    """A running server with one company and a marketing manager's API key."""

    base: str
    database: str
    key: str
    company_id: int
    env: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {self.key}"}, timeout=10
        )


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [MAILBEACON, *args, "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [MAILBEACON, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
    proc.kill()
    raise RuntimeError("server did not start in 30 s")


@pytest.fixture
def live(db_url: str, mailbox: tuple[Mailbox, str], tmp_path: Path) -> Iterator[Live]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MAILBEACON_DATABASE_URL": db_url,
        "MAILBEACON_BASE_URL": base,
        "MAILBEACON_SECRET_KEYS": "live1:integration-secret",
        "MAILBEACON_SMTP_URL": mailbox[1],
        "MAILBEACON_VAR_DIR": str(tmp_path / "var"),
    }
    company = _cli(env, "company", "create", "Acme", "--plan", "essential")["id"]
    user = _cli(
        env, "user", "create", "--company", str(company), "--email", "mm@acme.example.com",
        "--role", "marketing_manager", "--password", "marketing-pass-1",
    )  # fmt: skip
    proc = start_server(env, port)
    try:
        yield Live(base, db_url, user["api_key"], company, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
