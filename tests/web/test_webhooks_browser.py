"""The event webhooks page in Debian's Chromium against the real server.

A marketing manager adds a webhook by its labels ("URL", "Secret", the event boxes,
"Add webhook"), first with a secret too short and an ftp:// URL (errors shown next to
their fields; this server allows private receivers, for the loopback one, so the SSRF
refusal is tested through the API), then a good one; a new click reaches the receiver
and shows in the delivery log; pausing and deleting (which asks first) work. A
salesperson gets no page. axe-core finds nothing serious; screenshots go to
/tmp/webhooks-*.png.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from axe import check_axe
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Serve, Site
from webhook_receiver import Receiver

from mailbeacon.automation.event_stage import run_forever
from mailbeacon.store import Database, now
from testkit.sample import add_event

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the pages are engine-blind
]
SECRET = "whsec-0123456789"


def _login(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login?next=/settings/webhooks")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _shoot(page: Any, name: str) -> list[Any]:
    found = check_axe(page)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=f"/tmp/webhooks-{name}-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    return found  # type: ignore[no-any-return]


def _walk(base: str, site: Site, receiver_url: str, click: Any) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {"axe": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: (
                errors.append(m.text)
                if m.type == "error" and "422 (Unprocessable" not in m.text
                else None
            ),
        )
        _login(page, base, site.email("marketing_manager"), site.password)
        out["empty"] = page.inner_text("table.webhooks tbody")
        out["axe"]["empty"] = _shoot(page, "empty")

        page.get_by_label("URL").fill("ftp://hooks.example.com/")
        page.get_by_label("Secret").fill("short")
        page.get_by_label("Clicks").check()
        page.get_by_role("button", name="Add webhook").click()
        out["secret_error"] = page.inner_text("#hook-secret-error")
        out["axe"]["errors"] = _shoot(page, "errors")
        page.get_by_label("Secret").fill(SECRET)
        page.get_by_role("button", name="Add webhook").click()
        out["url_error"] = page.inner_text("#hook-url-error")

        page.get_by_label("URL").fill(receiver_url)
        page.get_by_label("Secret").fill(SECRET)
        page.get_by_label("Opens").uncheck()
        page.get_by_role("button", name="Add webhook").click()
        out["listed"] = page.inner_text("table.webhooks tbody")
        out["axe"]["list"] = _shoot(page, "list")

        click()  # a reader clicks; the stage sends it
        page.get_by_role("link", name=f"Deliveries of {receiver_url}").click()
        for _ in range(100):
            if "delivered" in page.inner_text("table"):
                break
            page.wait_for_timeout(100)
            page.reload()
        out["log"] = page.inner_text("table")
        out["axe"]["log"] = _shoot(page, "deliveries")

        page.get_by_role("link", name="All webhooks").click()
        page.get_by_role("button", name=f"Pause {receiver_url}").click()
        out["paused"] = page.inner_text("table.webhooks tbody")
        page.get_by_role("link", name=f"Delete {receiver_url}").click()
        out["asks"] = page.inner_text("h1")
        out["axe"]["delete"] = _shoot(page, "delete")
        page.get_by_role("button", name="Delete webhook").click()
        out["after"] = page.inner_text("table.webhooks tbody")

        seller = browser.new_page()
        _login(seller, base, site.email("salesperson"), site.password)
        out["seller"] = seller.goto(f"{base}/settings/webhooks").status
        out["errors"] = errors
        browser.close()
    return out


async def test_a_marketing_manager_adds_watches_and_deletes_a_webhook(
    site: Site, serve_site: Serve
) -> None:
    settings = site.settings.with_(webhook_allow_private=True)
    base = await serve_site(webhook_allow_private=True)
    receiver = Receiver(SECRET)
    receiver.start()
    db = Database(site.settings.database_url)
    loop = asyncio.get_running_loop()

    def click() -> None:
        async def write() -> None:
            async with db.begin() as conn:
                await add_event(conn, site.world, "l1", type="click", verdict="human",
                                at=now(), url="https://example.com/spring")  # fmt: skip

        asyncio.run_coroutine_threadsafe(write(), loop).result(10)

    stop = asyncio.Event()
    stage = asyncio.create_task(run_forever(db, settings, stop))
    try:
        got = await asyncio.to_thread(_walk, base, site, receiver.url, click)
    finally:
        stop.set()
        await stage
        await db.dispose()
        receiver.kill()
    assert got["errors"] == []
    assert "No webhooks yet" in got["empty"]
    assert got["secret_error"] == "The secret needs at least 8 characters."
    assert "starts with http:// or https://" in got["url_error"]
    assert receiver.url in got["listed"] and "Clicks" in got["listed"]
    assert "Opens" not in got["listed"] and "sending" in got["listed"]
    assert [(r.type, r.signed) for r in receiver.got] == [("click", True)]  # history not sent
    assert "delivered" in got["log"] and "Click #" in got["log"]
    assert "people, image proxies" in got["listed"]
    assert "paused" in got["paused"]
    assert got["asks"].startswith("Delete the webhook to")
    assert "No webhooks yet" in got["after"]
    assert got["seller"] == 403
    assert got["axe"] == {k: [] for k in ("empty", "errors", "list", "log", "delete")}
