"""The composer's "Send at" in Debian's Chromium: a marketing manager schedules a
campaign at each lead's best hour. A window of 500 hours is refused next to its field;
12 is saved; the confirmation says when; once the sender has planned the copies, the
sending page shows how many wait for their time and when the next and last go."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_browser import ARGS, CHROMIUM, server  # noqa: F401  (the live server fixture)

from mailbeacon.delivery import send_campaign
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, list_members, lists
from mailbeacon.tokens import Signer

_AXE = importlib.util.spec_from_file_location("axe", Path(__file__).parent / "axe.py")
assert _AXE and _AXE.loader
axe = importlib.util.module_from_spec(_AXE)
_AXE.loader.exec_module(axe)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]


async def _list(db: Database, site: Any) -> int:
    async with db.begin() as conn:
        list_id = await conn.scalar(
            sa.insert(lists)
            .values(company_id=site.world.company_id, name="Customers", created_at=now())
            .returning(lists.c.id)
        )
        for lead_id in sorted(site.world.leads.values())[:3]:
            await conn.execute(
                sa.insert(list_members).values(
                    list_id=list_id, lead_id=lead_id, company_id=site.world.company_id,
                    added_at=now(),
                )
            )  # fmt: skip
    return int(list_id)


async def test_schedule_a_campaign_at_each_leads_best_hour(site: Any, server: str) -> None:  # noqa: F811
    if not site.settings.is_sqlite:
        pytest.skip("a page story: one engine is enough")
    db = Database(site.settings.database_url)
    list_id = await _list(db, site)
    loop = asyncio.get_running_loop()

    def sender_runs(campaign_id: int) -> None:
        """What the sender stage does when it picks the queued campaign up."""
        signer = Signer(site.settings.secret_keys)
        go = send_campaign(
            db, site.settings, signer, site.world.company_id, campaign_id, wait=False
        )
        asyncio.run_coroutine_threadsafe(go, loop).result(timeout=30)

    def walk() -> dict[str, Any]:
        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{server}/login")
            page.get_by_label("Email").fill(site.email("marketing_manager"))
            page.get_by_label("Password").fill(site.password)
            page.get_by_role("button", name="Log in").click()
            page.goto(f"{server}/campaigns/new")
            page.get_by_label("Name").fill("Best-hour spring")
            page.get_by_label("Subject").fill("Hello {{first_name}}")
            page.get_by_label("List").select_option(str(list_id))
            page.get_by_label("At each lead's best hour").check()
            page.get_by_label("Within (hours)").fill("500")
            page.get_by_role("button", name="Save draft").click()
            error = page.locator("#within_hours-error")
            expect(error).to_have_text("Type a number of hours from 1 to 168.")
            expect(page.get_by_label("Within (hours)")).to_have_attribute("aria-invalid", "true")
            page.get_by_label("Within (hours)").fill("12")
            page.get_by_role("button", name="Save draft").click()
            expect(page.get_by_role("status")).to_have_text("Draft saved.")
            expect(page.get_by_label("At each lead's best hour")).to_be_checked()
            shots = {"composer": axe.check_axe(page)}
            page.locator("fieldset.send-at").screenshot(path="/tmp/besthour-composer.png")
            campaign_id = int(page.url.split("/campaigns/")[1].split("/")[0])

            page.get_by_role("button", name="Send now", exact=True).click()
            expect(page.locator("#send-when")).to_have_text(
                "When: at each lead's best hour within 12 hours."
            )
            shots["confirm"] = axe.check_axe(page)
            page.screenshot(path="/tmp/besthour-confirm.png")
            page.get_by_role("button", name="Schedule for 3 leads").click()
            expect(page).to_have_url(f"{server}/campaigns/{campaign_id}/sending")

            sender_runs(campaign_id)
            page.reload()
            expect(page.locator("#send-schedule")).to_contain_text(
                "Sending at each lead's best hour within 12 hours:"
            )
            waiting = page.inner_text("#send-waiting")
            shots["sending"] = axe.check_axe(page)
            page.screenshot(path="/tmp/besthour-sending.png")
            browser.close()
            return {"errors": errors, "axe": shots, "waiting": waiting, "id": campaign_id}

    got = await asyncio.to_thread(walk)
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(campaigns).where(campaigns.c.id == got["id"]))).one()
    await db.dispose()
    assert row.schedule == {"best_hour": True, "within_hours": 12}
    # The refused save answers 422 on purpose (Chromium logs any 4xx document).
    assert [e for e in got["errors"] if "status of 422" not in e] == []
    assert got["axe"] == {"composer": [], "confirm": [], "sending": []}
    # Three copies planned; those whose hour is not now wait, and the page says when.
    assert row.status == "sending" or got["waiting"] == "none waiting.", got["waiting"]
    if row.status == "sending":
        assert " waiting for their time, next at " in got["waiting"], got["waiting"]
