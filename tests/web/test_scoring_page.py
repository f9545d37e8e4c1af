"""The scoring model's page in Debian's Chromium against the real server: a marketing
manager turns the model on and changes its points; a wrong value is refused next to
its field; what was saved is what the API answers. Screenshot: /tmp/content-scoring.png.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from axe import check_axe
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Site

from mailbeacon.crm.scoring import get_model
from mailbeacon.store import Database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _walk(base: str, email: str, password: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/login?next=/rules")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.get_by_role("link", name="Scoring model").click()
        out["title"] = page.inner_text("h1")
        page.get_by_label("Score leads with this model").check()
        page.get_by_label("Points for a click").fill("8")
        page.get_by_label("Half-life in days").fill("-3")
        page.get_by_role("button", name="Save scoring model").click()
        out["refused"] = page.inner_text("#half_life_days-error")
        page.get_by_label("Half-life in days").fill("14")
        page.get_by_role("button", name="Save scoring model").click()
        out["saved"] = page.inner_text(".notice")
        out["axe"] = check_axe(page)
        page.screenshot(path="/tmp/content-scoring.png", full_page=True)
        out["errors"] = errors
        browser.close()
    return out


async def test_a_marketer_sets_the_scoring_model(site: Site, served: str) -> None:
    email = site.email("marketing_manager")
    out = await asyncio.to_thread(_walk, served, email, site.password)
    assert out["title"] == "Scoring model"
    assert "greater than or equal to 0" in out["refused"]
    assert out["saved"].startswith("Saved.")
    assert out["axe"] == [] and out["errors"] == []
    # What the page saved is the company's model, as the API answers it.
    db = Database(site.settings.database_url)
    try:
        async with db.connect() as conn:
            model = await get_model(conn, site.world.company_id)
    finally:
        await db.dispose()
    assert (model.enabled, model.click_points, model.half_life_days) == (True, 8, 14.0)
