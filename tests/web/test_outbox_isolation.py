"""The outbox through a real `mailbeacon serve` and Chromium, with two companies.

Company B adds company A's lead's address as a lead of its own: B's marketing manager
still sees none of A's mail (nor A's rule notification), B's salesperson gets a 403, and
A's marketing manager reading the mail records no open until they choose to open it as
the lead would.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailbeacon.automation.actions import Context, notify_owner
from mailbeacon.delivery import Outbox, SmtpTransport, start_outbox
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.tokens import Signer

MAILBEACON = str(Path(sys.executable).parent / "mailbeacon")
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SECRET = "live1:outbox-isolation-secret"
PASSWORD = "outbox-pass-1"
LEAD = "eve@shared.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [MAILBEACON, *args, "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@dataclass
class Company:
    id: int
    keys: dict[str, str]  # role -> API key

    def email(self, role: str) -> str:
        return f"{role}.{self.id}@company.example"

    def api(self, base: str, role: str = "marketing_manager") -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=base, headers=auth, timeout=10)


@dataclass
class Live:
    base: str
    outbox: Outbox
    a: Company
    b: Company


def make_company(env: dict[str, str], name: str) -> Company:
    company = Company(cli(env, "company", "create", name, "--plan", "essential")["id"], {})
    for role in ("marketing_manager", "salesperson"):
        user = cli(
            env, "user", "create", "--company", str(company.id), "--email", company.email(role),
            "--role", role, "--password", PASSWORD,
        )  # fmt: skip
        company.keys[role] = user["api_key"]
    return company


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    var = tmp_path / "var"
    box = start_outbox("127.0.0.1", free_port(), var / "outbox")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MAILBEACON_DATABASE_URL": db_url,
        "MAILBEACON_BASE_URL": base,
        "MAILBEACON_SECRET_KEYS": SECRET,
        "MAILBEACON_SMTP_URL": box.url,
        "MAILBEACON_VAR_DIR": str(var),
    }
    a, b = make_company(env, "Alpha"), make_company(env, "Beta")
    proc = subprocess.Popen(
        [MAILBEACON, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90  # a loaded CI machine starts it slowly
        while True:
            try:
                if httpx.get(f"{base}/api/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield Live(base, box, a, b)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        box.stop()


@contextmanager
def login(base: str, email_address: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as client:
        token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
        data = {"email": email_address, "password": PASSWORD, "csrf": token, "next": "/"}
        assert client.post("/login", data=data).status_code == 303
        yield client


def saved(box: Outbox, count: int) -> dict[str, str]:
    """Message-ID -> file name of the saved mails, once `count` have arrived."""
    deadline = time.monotonic() + 10
    while len(box.messages()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    found = {}
    for path in box.messages():
        mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        found[str(mail["Message-ID"])] = path.name
    assert len(found) == count
    return found


async def notify_a_owner(live: Live, settings: Settings, lead_id: int) -> None:
    """Company A's rule tells the lead's owner (A's marketing manager) by mail."""
    settings = settings.with_(smtp_url=live.outbox.url, base_url=live.base)
    db = Database(settings.database_url)
    try:
        async with httpx.AsyncClient() as http:
            ctx = Context(db, settings, Signer(settings.secret_keys), SmtpTransport(settings), http)
            job = {
                "company_id": live.a.id,
                "lead_id": lead_id,
                "rule_name": "Deal alert",
                "trigger": {"type": "click", "url": "https://alpha.example/pricing"},
                "action": {"type": "notify_owner"},
            }
            assert (await notify_owner(ctx, job)).status == "done"
    finally:
        await db.dispose()


def opens(live: Live, message_id: int) -> int:
    with live.a.api(live.base) as api:
        return int(api.get(f"/api/v1/messages/{message_id}").json()["hits"]["open"])


def browse(live: Live, paths: list[str], check: Any) -> None:
    """Log A's marketing manager in with Chromium, visit each path, then `check(path)`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live.base}/login")
            page.fill("input[name=email]", live.a.email("marketing_manager"))
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            for path in paths:
                page.goto(f"{live.base}{path}")
                page.wait_for_load_state("networkidle")
                check(path)
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium")
async def test_a_company_sees_only_what_it_sent_and_reading_records_no_open(
    live: Live, settings: Settings
) -> None:
    with live.a.api(live.base) as api:
        lead = api.post("/api/v1/leads", json={"email": LEAD, "first_name": "Eve"}).json()
        sent = api.post(
            "/api/v1/messages",
            json={"lead_id": lead["id"], "subject": "Alpha pricing", "html": "<p>Hi Eve</p>"},
        ).json()
    assert sent["status"] == "sent"
    await notify_a_owner(live, settings, lead["id"])
    with live.b.api(live.base) as api:  # B takes A's lead's address as its own lead
        assert api.post("/api/v1/leads", json={"email": LEAD}).status_code == 201
    files = saved(live.outbox, 2)
    message_file = files[sent["headers"]["Message-ID"]]
    [notice_file] = [name for mid, name in files.items() if mid.startswith("<mb.notify.")]

    with login(live.base, live.b.email("marketing_manager")) as b:
        listing = b.get("/outbox")
        assert listing.status_code == 200
        assert "Alpha pricing" not in listing.text and "Deal alert" not in listing.text
        assert message_file not in listing.text and notice_file not in listing.text
        for name in (message_file, notice_file):
            for suffix in ("", "/html", "/as-lead"):
                assert b.get(f"/outbox/{name}{suffix}").status_code == 404
    with login(live.base, live.b.email("salesperson")) as seller:
        assert seller.get("/outbox").status_code == 403
        assert seller.get(f"/outbox/{message_file}/html").status_code == 403
    with login(live.base, live.a.email("salesperson")) as seller:
        assert seller.get(f"/outbox/{message_file}").status_code == 403
    with login(live.base, live.a.email("marketing_manager")) as a:
        listing = a.get("/outbox").text
        assert "Alpha pricing" in listing and "Eve triggered &#39;Deal alert&#39;" in listing
        assert a.get(f"/outbox/{notice_file}").status_code == 200

    counted: dict[str, int] = {}
    paths = ["/outbox", f"/outbox/{message_file}", f"/outbox/{message_file}/as-lead"]
    await asyncio.to_thread(
        browse, live, paths, lambda path: counted.setdefault(path, opens(live, sent["id"]))
    )
    # Reading records nothing; the explicit "as your lead would" view is an open.
    assert counted == {paths[0]: 0, paths[1]: 0, paths[2]: 1}


def test_a_line_break_in_a_name_is_refused_naming_the_field(live: Live) -> None:
    with live.a.api(live.base) as api:
        for field in ("first_name", "last_name"):
            answer = api.post(
                "/api/v1/leads", json={"email": "x@y.example", field: "Eve\r\nBcc: a@evil.example"}
            )
            assert answer.status_code == 422
            assert answer.json()["error"]["field"] == field
