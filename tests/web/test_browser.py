"""The dashboard in Debian's Chromium against the real server (uvicorn on a free port).

A marketing manager logs in and sees the API's numbers with charts drawn and no script
errors; a live open appears without a reload; a salesperson gets 403. The campaign page
is saved to docs/screenshot-campaign.png for the README.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from mailbeacon.analytics import rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.app import create_app
from mailbeacon.store import Database
from mailbeacon.store.render import jsonable
from testkit.sample import add_event, ev

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-campaign.png"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]


@pytest.fixture
def server(site: Any) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(site.settings, run_stages=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _browse(base: str, email: str, password: str, path: str, act: Any) -> Any:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        response = page.goto(f"{base}{path}")
        try:
            return act(page, response, errors)
        finally:
            browser.close()


def _numbers(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "[data-field]",
        "els => Object.fromEntries(els.map(e => [e.dataset.field, e.textContent.trim()]))",
    )


async def test_campaign_page_matches_the_api_draws_charts_and_goes_live(
    site: Any, server: str
) -> None:
    world = site.world
    db = Database(site.settings.database_url)
    async with db.connect() as conn:
        api = jsonable(await campaign_report(conn, world.company_id, world.campaign_id))
    async with httpx.AsyncClient() as client:  # no session: off to the login page
        assert (await client.get(f"{server}/campaigns/{world.campaign_id}")).status_code == 303
    loop = asyncio.get_running_loop()

    def new_open() -> None:
        async def go() -> None:
            async with db.begin() as conn:
                await add_event(conn, world, "l2", **ev(600, "open", "human", client="Outlook"))
            await rollups.catch_up(db)

        asyncio.run_coroutine_threadsafe(go(), loop).result(timeout=10)

    def act(page: Any, response: Any, errors: list[str]) -> dict[str, Any]:
        assert response.status == 200
        shown = _numbers(page)
        estimate = page.inner_text("#estimate")
        unreliable = page.is_visible("#estimate-unreliable")
        page.wait_for_function("() => document.querySelectorAll('canvas').length === 5")
        drawn = page.eval_on_selector_all(
            "canvas",
            """cs => cs.map(c => {
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })""",
        )
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        new_open()
        page.wait_for_function(
            "() => document.querySelector('[data-field=human_opens_unique]').textContent.trim()"
            " === '6'",
            timeout=10_000,
        )
        return {
            "shown": shown,
            "drawn": drawn,
            "errors": list(errors),
            "estimate": estimate,
            "unreliable": unreliable,
        }

    got = await asyncio.to_thread(
        _browse, server, site.email("marketing_manager"), site.password,
        f"/campaigns/{world.campaign_id}", act,
    )  # fmt: skip
    await db.dispose()
    for field, text in got["shown"].items():
        want = f"{api[field] * 100:.1f}%" if field.endswith("rate") else str(api[field])
        assert text == want, field
    assert {"estimated_open_rate", "open_rate", "privacy_protected"} <= set(got["shown"])
    low, high = api["estimated_open_rate_interval"]
    assert f"90% interval {low * 100:.1f}% to {high * 100:.1f}%" in got["estimate"]
    assert "Assumption: readers click as often whatever mail app they use." in got["estimate"]
    assert got["unreliable"] is True  # one visible opener clicked: the page says so
    assert "only 1 reader(s) with visible opens clicked" in got["estimate"]
    assert all(n > 0 for n in got["drawn"]), got["drawn"]
    assert got["errors"] == []
    assert SCREENSHOT.stat().st_size > 10_000


async def test_a_salesperson_gets_403(site: Any, server: str) -> None:
    def act(page: Any, response: Any, errors: list[str]) -> int:
        return int(response.status)

    status = await asyncio.to_thread(
        _browse, server, site.email("salesperson"), site.password,
        f"/campaigns/{site.world.campaign_id}", act,
    )  # fmt: skip
    assert status == 403
