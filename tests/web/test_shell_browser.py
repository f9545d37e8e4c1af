"""Every page of the dashboard's shell in Debian's Chromium, as a marketing manager, at
a desktop and a phone width: axe-core finds no serious or critical violation, no script
error or CSP violation happens, the top bar fits a 390 px phone, and /api/docs renders
its operations with no request leaving 127.0.0.1. Screenshots go to a temporary folder
(SHELL_SHOTS to keep them) for a person to look at."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe import check_axe
from dashboard_helpers import CHROMIUM, Serve, Site
from dashboard_helpers import CHROMIUM_ARGS as ARGS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
WIDTHS = {"desktop": 1280, "phone": 390}
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""
LOCAL = {"127.0.0.1"}


def _console(seen: dict[str, Any], message: Any) -> None:
    # The 404 page's own status is reported by Chromium as a failed load: expected.
    expected = message.location.get("url", "").endswith("/no-such-page")
    if message.type == "error" and not expected:
        seen["errors"].append(f"{message.location.get('url')}: {message.text}")


def _walk(base: str, site: Site, shots: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    pages = {
        "home": "/",
        "campaigns": "/campaigns",
        "campaign": f"/campaigns/{site.world.campaign_id}",
        "lead": f"/leads/{site.world.leads['l1']}",
        "rules": "/rules",
        "outbox": "/outbox",
        "not-found": "/no-such-page",
        "api-docs": "/api/docs",
    }
    seen: dict[str, Any] = {"errors": [], "axe": {}, "csp": {}, "overflow": {}, "left": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        for size, width in WIDTHS.items():
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.add_init_script(WATCH)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("console", lambda m: _console(seen, m))

            def only_local(route: Any) -> None:
                if urlsplit(route.request.url).hostname in LOCAL:
                    route.continue_()
                else:
                    seen["left"].append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(f"{base}/login")
            seen["axe"][f"login@{size}"] = check_axe(page)
            page.screenshot(path=str(shots / f"login-{size}.png"), full_page=True)
            page.get_by_label("Email").fill(site.email("marketing_manager"))
            page.get_by_label("Password").fill(site.password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(re.compile(r"/$"))
            for name, path in pages.items():
                key = f"{name}@{size}"
                page.goto(f"{base}{path}")
                page.wait_for_load_state("load")
                if name == "api-docs":
                    page.wait_for_selector(".opblock", timeout=15_000)
                    seen["operations"] = page.locator(".opblock").count()
                if name == "campaign":
                    page.wait_for_function("document.querySelectorAll('canvas').length === 5")
                # Swagger UI nests its "try it" buttons in the operation's toggle button:
                # upstream markup (swagger-api/swagger-ui), not ours to change.
                skip = ("nested-interactive",) if name == "api-docs" else ()
                seen["axe"][key] = check_axe(page, disable=skip)
                seen["csp"][key] = page.evaluate("window.__violations")
                seen["overflow"][key] = page.evaluate(
                    """() => { const h = document.querySelector('header.top');
                       return [document.documentElement.scrollWidth - innerWidth,
                               h ? h.scrollWidth - h.clientWidth : 0]; }"""
                )
                page.screenshot(path=str(shots / f"{name}-{size}.png"), full_page=True)
            page.close()
        browser.close()
    return seen


async def test_every_shell_page_is_accessible_and_fits(serve_site: Serve, site: Site) -> None:
    base = await serve_site()
    keep = os.environ.get("SHELL_SHOTS")
    with tempfile.TemporaryDirectory() as tmp:
        shots = Path(keep or tmp)
        shots.mkdir(parents=True, exist_ok=True)
        seen = await asyncio.to_thread(_walk, base, site, shots)
    assert seen["errors"] == [], seen["errors"]
    assert {k: v for k, v in seen["axe"].items() if v} == {}, seen["axe"]
    assert {k: v for k, v in seen["csp"].items() if v} == {}
    assert seen["left"] == []  # nothing fetched from outside 127.0.0.1
    assert seen["operations"] >= 10  # the API's operations drew
    # Nothing overflows sideways: not the page, not the top bar (phone included).
    assert {k: v for k, v in seen["overflow"].items() if v != [0, 0]} == {}
