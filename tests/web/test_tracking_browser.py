"""Tracking off in the pages, in Debian's Chromium against the real server.

A marketing manager stops tracking a lead on the lead page (the same crm function
`PATCH /api/v1/leads/{id}` calls) and turns it back on; in the composer they untick
"Track clicks", save, and find it still unticked after a reload, as the campaign's
`tracking` says. Axe finds no serious violation; screenshots go to /tmp/tracking-*.png.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from axe import check_axe
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Site
from sqlalchemy import insert

from mailbeacon.crm.campaigns import get_campaign
from mailbeacon.crm.leads import get_lead
from mailbeacon.crm.users import get_principal
from mailbeacon.store import Database, now
from mailbeacon.store.schema import list_members, lists

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),  # the pages are engine-blind
]
SHOTS = Path("/tmp")


async def _list(site: Site) -> int:
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            list_id = await conn.scalar(
                insert(lists)
                .values(company_id=site.world.company_id, name="Customers", created_at=now())
                .returning(lists.c.id)
            )
            await conn.execute(
                insert(list_members).values(
                    list_id=list_id,
                    lead_id=site.world.leads["l1"],
                    company_id=site.world.company_id,
                    added_at=now(),
                )
            )
    finally:
        await db.dispose()
    return int(list_id)


def _shoot(page: Any, name: str) -> None:
    assert check_axe(page) == [], name
    page.screenshot(path=str(SHOTS / f"tracking-{name}.png"), full_page=True)


def _walk(base: str, email: str, password: str, lead_id: int, list_id: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{base}/login?next=/leads/{lead_id}")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()

        details = "dt:has-text('Email tracking') + dd"
        out["before"] = page.inner_text(details)
        page.get_by_role("button", name="Stop tracking this lead").click()
        page.wait_for_load_state()
        out["notice"] = page.inner_text("p.notice")
        out["after"] = page.inner_text(details)
        _shoot(page, "lead-off")
        page.get_by_role("button", name="Track this lead again").click()
        page.wait_for_load_state()
        out["again"] = page.inner_text(details)

        page.goto(f"{base}/campaigns/new")
        page.get_by_label("Name", exact=True).fill("No clicks")
        page.get_by_label("Subject").fill("Hello")
        page.get_by_label("List").select_option(str(list_id))
        page.get_by_label("Track clicks").uncheck()
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_load_state()
        page.reload()
        out["edit_url"] = page.url
        out["opens_checked"] = page.get_by_label("Track opens").is_checked()
        out["clicks_checked"] = page.get_by_label("Track clicks").is_checked()
        _shoot(page, "composer")
        out["errors"] = errors
        browser.close()
    return out


async def test_a_marketing_manager_switches_tracking_off_in_the_pages(
    site: Site, served: str
) -> None:
    lead_id = site.world.leads["l1"]
    list_id = await _list(site)
    got = await asyncio.to_thread(
        _walk, served, site.email("marketing_manager"), site.password, lead_id, list_id
    )
    assert got["errors"] == []
    assert got["before"] == "On"
    assert got["notice"] == "This lead is no longer tracked."
    assert got["after"].startswith("Off")
    assert got["again"] == "On"
    assert (got["opens_checked"], got["clicks_checked"]) == (True, False)

    campaign_id = int(got["edit_url"].split("/campaigns/")[1].split("/")[0])
    db = Database(site.settings.database_url)
    try:
        async with db.connect() as conn:
            campaign = await get_campaign(conn, site.world.company_id, campaign_id)
            who = await get_principal(conn, site.world.users["marketing_manager"])
            assert who is not None
            lead = await get_lead(conn, who, lead_id)
    finally:
        await db.dispose()
    assert campaign["tracking"] == {"opens": True, "clicks": False}
    assert campaign["tags"] == []  # no marker tags any more: the switches are columns
    assert lead["tracking"] is True
