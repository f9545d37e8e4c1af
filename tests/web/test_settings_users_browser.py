"""/settings/users and /invite/{token} in Debian's Chromium against the real server.

An administrator sees the plan's use and the users; invites a sales manager (the mail
reaches a real SMTP server), makes the marketing manager a company manager, asks to
deactivate the salesperson and confirms, makes an API key (shown once, works over
HTTP), revokes it (401 at once). The invited user follows the mailed link, sets a
password and lands signed in. A salesperson gets a 403 page. No script errors, no
serious axe violation; screenshots at 1280 and 390 px go to /tmp/users-*.png.
"""

from __future__ import annotations

import asyncio
import email
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from axe import check_axe
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Serve, Site

from mailbeacon.crm.users import create_user
from mailbeacon.store import Database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]
SHOTS = Path("/tmp")
ADMIN = "admin@acme.example"
# A form sent back with its errors answers 4xx; Chromium logs it as "Failed to load
# resource". Every other console error counts.
FORM_ANSWERS = ("Failed to load resource",)
WIDEST = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
               && !e.closest('.table-wrap'))
  .map(e => e.tagName + '.' + e.className + '#' + e.id)"""


class Inbox:
    def __init__(self) -> None:
        self.mails: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


def _shoot(page: Any, name: str, out: dict[str, Any]) -> None:
    out.setdefault("axe", {})[name] = check_axe(page)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"users-{name}-{width}.png"), full_page=True)
        out.setdefault("overflow", {})[f"{name}-{width}"] = page.evaluate(WIDEST)
    page.set_viewport_size({"width": 1280, "height": 900})


def _login(page: Any, base: str, address: str, password: str, target: str) -> None:
    page.goto(f"{base}/login?next={target}")
    page.fill("input[name=email]", address)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _walk(base: str, site: Site, inbox: Inbox) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    mm, seller = site.email("marketing_manager"), site.email("salesperson")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        errors: list[str] = []

        def new_page() -> Any:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            return page

        # A salesperson may not manage users.
        sales = new_page()
        _login(sales, base, seller, site.password, "/leads")
        out["sales_status"] = sales.goto(f"{base}/settings/users").status

        page = new_page()
        _login(page, base, ADMIN, site.password, "/settings/users")
        out["plan"] = page.inner_text("section.plan")
        _shoot(page, "page", out)

        page.get_by_label("Email", exact=True).fill("Sol@Acme.example")
        page.get_by_label("Role", exact=True).select_option("sales_manager")
        page.get_by_role("button", name="Invite", exact=True).click()
        out["invited"] = page.inner_text(".notice")

        page.get_by_label(f"Role of {mm}").select_option("company_manager")
        page.get_by_role("button", name=f"Change role of {mm}").click()
        out["role_changed"] = page.inner_text(".notice")

        page.get_by_role("link", name=f"Deactivate {seller}").click()
        out["confirm"] = page.inner_text("h1")
        _shoot(page, "deactivate", out)
        page.get_by_role("button", name="Deactivate", exact=True).click()
        out["deactivated"] = page.inner_text(".notice")
        out["sales_after"] = sales.goto(f"{base}/leads").url  # their session has ended

        page.get_by_label("Key name").fill("CRM sync")
        page.get_by_role("button", name="Create API key").click()
        out["key"] = page.get_by_label("API key", exact=True).input_value()
        _shoot(page, "key", out)
        out["key_works"] = httpx.get(
            f"{base}/api/v1/api-keys", headers={"Authorization": f"Bearer {out['key']}"}
        ).status_code
        prefix = out["key"].split("_")[1]
        page.get_by_role("button", name=f"Revoke key mb_{prefix}").click()
        out["revoked"] = page.inner_text(".notice")
        out["key_after"] = httpx.get(
            f"{base}/api/v1/api-keys", headers={"Authorization": f"Bearer {out['key']}"}
        ).status_code
        out["statuses"] = page.eval_on_selector_all(
            "table.users tbody tr",
            "rs => rs.map(r => [r.cells[0].innerText.split('\\n')[0].replace(' you', ''),"
            " r.cells[1].innerText.trim()])",
        )
        out["keys_table"] = page.inner_text("table.keys")
        _shoot(page, "after", out)

        # The invited sales manager follows the mailed link.
        mail = inbox.mails[-1]
        link = re.search(r"(http://\S+/invite/\S+)", mail.get_payload(decode=True).decode())
        assert link, mail.as_string()
        invited = new_page()
        out["link"] = link.group(1)
        # The link is on MAILBEACON_BASE_URL; this test's server listens elsewhere.
        invited.goto(base + urlsplit(link.group(1)).path)
        out["welcome"] = invited.inner_text("h1")
        _shoot(invited, "invite", out)
        invited.get_by_label("Password", exact=True).fill("sol-password-1")
        invited.get_by_label("Repeat password").fill("sol-password-1")
        invited.get_by_role("button", name="Set password").click()
        invited.wait_for_load_state()
        out["landed"] = invited.url
        out["signed_in_as"] = invited.inner_text("header .who")
        out["errors"] = [e for e in errors if not any(a in e for a in FORM_ANSWERS)]
        browser.close()
    return out


async def test_an_administrator_manages_the_team_in_the_browser(
    site: Site, serve_site: Serve
) -> None:
    if "postgresql" in site.settings.database_url:
        pytest.skip("one engine is enough for the browser walk; the pages are engine-blind")
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            await create_user(
                conn,
                company_id=site.world.company_id,
                email=ADMIN,
                role="administrator",
                password=site.password,
            )
    finally:
        await db.dispose()
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    smtp = Controller(inbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        base = await serve_site(smtp_url=f"smtp://127.0.0.1:{port}")
        got = await asyncio.to_thread(_walk, base, site, inbox)
    finally:
        smtp.stop()
    mm, seller = site.email("marketing_manager"), site.email("salesperson")
    assert got["errors"] == []
    assert all(v == [] for v in got["axe"].values()), got["axe"]
    assert all(v == [] for v in got["overflow"].values()), got["overflow"]
    assert got["sales_status"] == 403
    assert "Users\n3 of 10" in got["plan"]
    assert got["invited"].startswith("Invited sol@acme.example")
    assert got["role_changed"] == f"{mm} is now company manager."
    assert got["confirm"] == f"Deactivate {seller}?"
    assert got["deactivated"].startswith(f"{seller} is deactivated")
    assert "/login" in got["sales_after"]
    assert got["key"].startswith("mb_") and got["key_works"] == 200
    assert got["revoked"].startswith("The API key is revoked")
    assert got["key_after"] == 401
    assert "CRM sync" in got["keys_table"] and "revoked" in got["keys_table"]
    assert got["key"] not in got["keys_table"]  # shown once, then only its prefix
    assert sorted(got["statuses"]) == sorted(
        [
            [ADMIN, "active"],
            [mm, "active"],
            [seller, "deactivated"],
            ["sol@acme.example", "invited"],
        ]
    )
    assert got["link"].startswith(f"{site.settings.base_url}/invite/")
    assert got["welcome"].startswith("Welcome to Acme")
    assert got["landed"].endswith("/leads") or got["landed"].endswith("/")
    assert got["signed_in_as"].startswith("sol@acme.example")
