"""The dashboard under its Content-Security-Policy in Debian's Chromium: the campaign
page draws its charts and the rules pages work (a rule is created and disabled by
their forms) with no policy violation and no console error."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from dashboard_helpers import CHROMIUM, Site
from dashboard_helpers import CHROMIUM_ARGS as ARGS

from mailbeacon.api.headers import DASHBOARD_CSP

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
# Every violation the page sees, including those no console message reports.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def _walk(base: str, email: str, password: str, campaign_id: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"errors": [], "violations": {}, "csp": {}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        page.add_init_script(WATCH)
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)

        def visit(path: str) -> None:
            response = page.goto(f"{base}{path}")
            assert response is not None and response.status == 200, path
            seen["csp"][path] = response.headers.get("content-security-policy")
            settle(path)

        def settle(path: str) -> None:
            page.wait_for_load_state("load")
            seen["violations"][path] = page.evaluate("window.__violations")

        page.goto(f"{base}/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/$"))

        visit(f"/campaigns/{campaign_id}")
        page.wait_for_function("() => document.querySelectorAll('canvas').length === 5")
        seen["canvases"] = page.eval_on_selector_all(
            "canvas",
            """cs => cs.map(c => {
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })""",
        )
        settle(f"/campaigns/{campaign_id}")

        visit("/rules")
        visit("/rules/new")
        page.get_by_label("Name").fill("Warm leads")
        page.get_by_label("Trigger").select_option("opened")
        first = page.get_by_role("group", name="Then, action 1")
        first.get_by_label("Action").select_option("add_score")
        first.get_by_label("Points").fill("5")
        page.get_by_role("button", name="Create rule").click()
        page.wait_for_url(re.compile(r".*/rules/\d+$"))
        rule_path = page.url.removeprefix(base)
        settle(rule_path)
        page.get_by_role("button", name="Disable").click()
        page.wait_for_load_state("load")
        seen["after_disable"] = page.get_by_role("button", name="Enable").count()
        settle(rule_path + " (disabled)")
        seen["clean"] = list(seen["errors"])
        # The watch itself works: an inline script, as injected markup would bring, is
        # refused and reported.
        page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.__ran = true'; document.body.append(s); }"""
        )
        page.wait_for_function("() => window.__violations.length > 0")
        seen["inline"] = page.evaluate("[window.__violations, window.__ran === true]")
        browser.close()
    return seen


async def test_the_campaign_and_rules_pages_run_under_the_policy(site: Site, served: str) -> None:
    seen = await asyncio.to_thread(
        _walk, served, site.email("marketing_manager"), site.password, site.world.campaign_id
    )
    assert seen["clean"] == []
    assert all(v == [] for v in seen["violations"].values()), seen["violations"]
    assert set(seen["violations"]) == {
        "/campaigns/1",
        "/rules",
        "/rules/new",
        "/rules/1",
        "/rules/1 (disabled)",
    }
    assert seen["inline"] == [["script-src-elem inline"], False]
    [refused] = seen["errors"]
    assert refused.startswith("Executing inline script violates")
    assert set(seen["csp"].values()) == {DASHBOARD_CSP}
    assert len(seen["canvases"]) == 5 and all(n > 0 for n in seen["canvases"])
    assert seen["after_disable"] == 1
