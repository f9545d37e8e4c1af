"""The /settings page in Debian's Chromium against the real server.

A company manager opens Settings from the top bar, reads the plan's limits and usage,
types a retention past ten years (the error stands next to the field), then
turns anonymising on and keeps raw hits 90 days and addresses 30: the API answers the
same settings afterwards. A marketing manager has no Settings link and gets a 403 page;
so does a salesperson. No script errors (the CSP refuses inline code), no serious
accessibility violation; screenshots at 1280 and 390 px go to /tmp/privacy-settings-*.png.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe import check_axe
from company_helpers import add_managers
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Site

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the engine is not the story
]
SHOTS = Path("/tmp")
# The 422 of a form sent back with its errors is logged by Chromium as a failed load.
FORM_ANSWER = "status of 422 (Unprocessable"


def _login(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login?next=/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _shoot(page: Any, name: str) -> None:
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"privacy-settings-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _walk_manager(base: str, email: str, password: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _login(page, base, email, password)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
        out["url"] = page.url
        out["headings"] = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
        out["facts"] = page.inner_text("dl.settings-facts")
        out["links"] = {
            name: page.get_by_role("link", name=name).get_attribute("href")
            for name in ("Manage users", "Manage event webhooks")
        }
        out["axe"] = check_axe(page)
        _shoot(page, "page")

        page.get_by_label("Keep raw hits (days)").fill("5000")
        page.get_by_role("button", name="Save tracking and privacy").click()
        out["error"] = page.inner_text("#hit_retention_days-error")
        out["error_described"] = page.get_by_label("Keep raw hits (days)").get_attribute(
            "aria-describedby"
        )
        out["axe_error"] = check_axe(page)
        _shoot(page, "error")

        page.get_by_label("Anonymise IP addresses at capture").check()
        page.get_by_label("Keep raw hits (days)").fill("90")
        page.get_by_label("Keep addresses and user agents (days)").fill("30")
        page.get_by_role("button", name="Save tracking and privacy").click()
        out["notice"] = page.inner_text("p.notice")
        out["checked"] = page.get_by_label("Anonymise IP addresses at capture").is_checked()
        _shoot(page, "saved")
        out["errors"] = [e for e in errors if FORM_ANSWER not in e]
        browser.close()
    return out


def _walk_refused(base: str, email: str, password: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        _login(page, base, email, password)
        bar = page.eval_on_selector_all("header nav a", "as => as.map(a => a.textContent)")
        answer = page.goto(f"{base}/settings")
        out = {"bar": bar, "status": answer.status, "text": page.inner_text("main")}
        browser.close()
    return out


async def test_a_company_manager_sets_privacy_in_the_browser(site: Site, served: str) -> None:
    keys = await add_managers(site)
    got = await asyncio.to_thread(
        _walk_manager, served, site.email("company_manager"), site.password
    )

    assert got["url"].endswith("/settings")
    assert got["headings"] == ["Company", "Tracking and privacy", "Users", "Event webhooks"]
    # The essential plan: 10 users, 25,000 leads; the known mix and two managers use them.
    facts = " ".join(got["facts"].split())
    assert facts == "Name Acme Spring launch Plan Essential Users 4 of 10 Leads 9 of 25,000"
    assert got["links"] == {
        "Manage users": "/settings/users",
        "Manage event webhooks": "/settings/webhooks",
    }
    assert got["error"].startswith("Enter a whole number of days")
    assert "hit_retention_days-error" in got["error_described"]
    assert got["notice"] == "Saved the tracking and privacy settings."
    assert got["checked"] is True
    assert got["axe"] == [] and got["axe_error"] == []
    assert got["errors"] == []

    # The page saved through the service the API reads.
    async with httpx.AsyncClient(
        base_url=served, headers={"Authorization": f"Bearer {keys['marketing_manager']}"}
    ) as api:
        tracking = (await api.get("/api/v1/company")).json()["tracking"]
    assert tracking == {
        "anonymize_ip": True, "hit_retention_days": 90, "address_retention_days": 30
    }  # fmt: skip


@pytest.mark.parametrize("role", ["marketing_manager", "salesperson"])
async def test_other_roles_get_no_settings(site: Site, served: str, role: str) -> None:
    got = await asyncio.to_thread(_walk_refused, served, site.email(role), site.password)
    assert "Settings" not in got["bar"]
    assert got["status"] == 403
    assert "cannot open the company's settings" in got["text"]
