"""The leads, import and list pages in Debian's Chromium against the real server.

A marketing manager searches, filters and pages through 120 leads (keyset "Next page"
links), adds, edits and deletes a lead, imports a CSV with two bad rows and sees their
lines, imports 6,000 rows in the background and watches the bar finish after a reload,
makes a list, adds selected leads, removes one, and exports the view as CSV. A
salesperson sees only their own leads and no tracking data. No script errors (the CSP
refuses inline code). Screenshots at 1280 and 390 px go to /tmp/leads-*.png.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from axe import check_axe
from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, Site

from mailbeacon.crm import import_jobs
from mailbeacon.crm.leads import create_lead
from mailbeacon.crm.users import get_principal
from mailbeacon.store import Database

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's /usr/bin/chromium"),
]
SHOTS = Path("/tmp")
MANY = 120


async def _seed(site: Site) -> None:
    """120 leads of the marketing manager, and 2 of the salesperson."""
    db = Database(site.settings.database_url)
    try:
        async with db.begin() as conn:
            manager = await get_principal(conn, site.world.users["marketing_manager"])
            seller = await get_principal(conn, site.world.users["salesperson"])
            assert manager and seller
            for i in range(MANY):
                await create_lead(
                    conn, manager, email=f"page{i:03d}@many.example", first_name=f"Pat{i}"
                )
            for i in range(2):
                await create_lead(conn, seller, email=f"mine{i}@sales.example")
    finally:
        await db.dispose()


def _login(page: Any, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/login?next=/leads")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


WIDEST = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
               && !e.closest('.table-wrap'))
  .map(e => e.tagName + '.' + e.className + '#' + e.id)"""


def _shoot(page: Any, name: str) -> None:
    # No serious or critical accessibility violation (axe-core), at the desktop width.
    assert check_axe(page) == [], name
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"leads-{name}-{width}.png"), full_page=True)
        page.screenshot(path=str(SHOTS / f"leads-{name}-{width}-top.png"))
        # Nothing of these pages is wider than the phone; tables scroll in their box.
        assert page.evaluate(WIDEST) == [], (name, width)
    page.set_viewport_size({"width": 1280, "height": 900})


# A form sent back with its errors answers 409/422 (as the API would); Chromium logs
# any 4xx page as "Failed to load resource". Every other console error counts.
FORM_ANSWERS = ("status of 409 (Conflict)", "status of 422 (Unprocessable")


def _script_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(a in e for a in FORM_ANSWERS)]


def _emails(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "table.leads tbody td:nth-child(2) a", "as => as.map(a => a.textContent.trim())"
    )


def _walk_manager(base: str, email: str, password: str, tmp: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _login(page, base, email, password)
        page.goto(f"{base}/leads")

        # Search, then filter; then page through everything by "Next page".
        page.get_by_label("Search", exact=True).fill("PAGE011")
        page.get_by_role("button", name="Apply").click()
        out["search"] = _emails(page)
        page.get_by_label("Search", exact=True).fill("")
        page.get_by_label("Engagement").select_option("opened")
        page.get_by_role("button", name="Apply").click()
        out["opened"] = sorted(_emails(page))
        page.get_by_label("Engagement").select_option("")
        page.get_by_label("Sort").select_option("email")
        page.get_by_role("button", name="Apply").click()
        _shoot(page, "list")
        seen, pages = _emails(page), 1
        while page.get_by_role("link", name="Next page").count():
            page.get_by_role("link", name="Next page").click()
            seen += _emails(page)
            pages += 1
        out["paged"], out["pages"] = seen, pages

        # Add, edit, delete (asks first).
        page.goto(f"{base}/leads")
        page.get_by_label("Email", exact=True).fill("grace@navy.example")
        page.get_by_label("First name").fill("Grace")
        page.get_by_label("Time zone").fill("America/New_York")
        page.get_by_role("button", name="Add lead").click()
        out["added_title"] = page.inner_text("h1")
        page.get_by_label("Last name").fill("Hopper")
        page.get_by_label("New custom field").fill("rank")
        page.get_by_label("Its value").fill("Rear Admiral")
        page.get_by_role("button", name="Save").click()
        out["edited"] = page.inner_text("dl.fields")
        _shoot(page, "lead")
        page.get_by_label("Email", exact=True).fill("page001@many.example")
        page.get_by_role("button", name="Save").click()
        out["duplicate"] = page.inner_text("#edit-email-error")
        # Export downloads everything held about them; Delete asks first.
        with page.expect_download() as download:
            page.get_by_role("button", name="Export", exact=True).click()
        out["export_name"] = download.value.suggested_filename
        out["export"] = json.loads(Path(download.value.path()).read_text())
        page.locator("section", has_text="Their data").screenshot(
            path=str(SHOTS / "erase-their-data.png")
        )
        page.get_by_role("link", name="Delete", exact=True).click()
        out["axe"] = {"delete": check_axe(page)}
        page.screenshot(path=str(SHOTS / "erase-confirm.png"))
        page.get_by_role("button", name="Delete permanently").click()
        out["deleted"] = page.inner_text(".notice")

        # A small import with two bad rows.
        small = tmp / "small.csv"
        small.write_text(
            "email,first_name,company\nok1@imp.example,A,Acme\nnope,B,\n"
            "ok2@imp.example,C,Bee\nok3@,D,\n"
        )
        page.goto(f"{base}/leads/import")
        out["axe"]["import"] = check_axe(page)
        page.get_by_label("CSV file").set_input_files(str(small))
        page.get_by_role("button", name="Import").click()
        out["small_imported"] = page.inner_text("#imported")
        out["small_lines"] = page.eval_on_selector_all(
            "table.rejected tbody td:first-child", "ts => ts.map(t => t.textContent.trim())"
        )
        _shoot(page, "import-result")

        # A large import: the bar fills in the background and survives a reload.
        big = tmp / "big.csv"
        big.write_text(
            "email,first_name\n" + "".join(f"big{i}@bulk.example,B{i}\n" for i in range(6000))
        )
        page.goto(f"{base}/leads/import")
        page.get_by_label("CSV file").set_input_files(str(big))
        page.get_by_role("button", name="Import").click()
        out["job_bar"] = page.get_by_label("Import progress").count()
        out["axe"]["job"] = check_axe(page) if out["job_bar"] else "finished first"
        page.reload()
        page.wait_for_selector("#imported", timeout=30_000)
        out["big_imported"] = page.inner_text("#imported")

        # A list: create it, add selected leads, remove one.
        page.goto(f"{base}/lists")
        page.get_by_label("Name", exact=True).fill("Q3 webinar")
        page.get_by_role("button", name="Create list").click()
        _shoot(page, "lists")
        page.goto(f"{base}/leads?sort=email&q=page00")
        page.get_by_label("Select every lead on this page").check()
        ticked = "() => document.querySelectorAll('input[name=lead_ids]:checked').length"
        out["all_ticked"] = page.evaluate(ticked)
        page.get_by_label("Select every lead on this page").uncheck()
        out["none_ticked"] = page.evaluate(ticked)
        for i in range(3):
            page.get_by_label(f"Select page00{i}@many.example").check()
        page.get_by_label("Add selected to list").select_option(label="Q3 webinar")
        page.get_by_role("button", name="Add to list").click()
        out["added_notice"] = page.inner_text(".notice")
        page.goto(f"{base}/lists")
        page.get_by_role("link", name="Q3 webinar").click()
        page.get_by_role("button", name="Remove page000@many.example").click()
        out["members"] = page.eval_on_selector_all(
            "table.members tbody td:first-child a", "as => as.map(a => a.textContent.trim())"
        )
        _shoot(page, "members")

        # Export the current view and read it back.
        page.goto(f"{base}/leads?q=page00&sort=email")
        with page.expect_download() as got:
            page.get_by_role("link", name="Export CSV").click()
        out["csv"] = Path(got.value.path()).read_text()
        out["errors"] = _script_errors(errors)
        browser.close()
    return out


def _walk_seller(base: str, email: str, password: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _login(page, base, email, password)
        page.goto(f"{base}/leads?sort=email")
        out = {
            "emails": _emails(page),
            "headers": page.eval_on_selector_all(
                "table.leads th", "ts => ts.map(t => t.textContent.trim())"
            ),
            "engagement": page.get_by_label("Engagement").count(),
            "score": page.get_by_label("Minimum score").count(),
            "text": page.inner_text("main"),
        }
        out["axe"] = check_axe(page)
        page.get_by_role("link", name="mine0@sales.example").click()
        out["lead"] = page.inner_text("main")
        page.screenshot(path=str(SHOTS / "leads-sales-390.png"), full_page=True)
        out["errors"] = errors
        browser.close()
    return out


async def test_a_marketing_manager_works_the_leads_in_the_browser(
    site: Site, served: str, tmp_path: Path
) -> None:
    if "postgresql" in site.settings.database_url:
        pytest.skip("one engine is enough for the browser walk; the pages are engine-blind")
    await _seed(site)
    db = Database(site.settings.database_url)
    stop = asyncio.Event()
    stage = asyncio.create_task(import_jobs.run_forever(db, site.settings, stop))
    try:
        got = await asyncio.to_thread(
            _walk_manager, served, site.email("marketing_manager"), site.password, tmp_path
        )
    finally:
        stop.set()
        await stage
        await db.dispose()
    assert got["errors"] == []
    assert got["search"] == ["page011@many.example"]
    # known_mix: l1 (human open), l2 (Gmail proxy), l3 (clicked, inferred open), ...
    assert got["opened"] and all(e.endswith("@lead.example") for e in got["opened"])
    everyone = sorted(got["paged"])
    assert len(got["paged"]) == len(set(got["paged"])) == MANY + 2 + len(site.world.leads)
    assert got["paged"] == everyone and got["pages"] == 3
    assert "grace@navy.example" in got["added_title"]
    assert "Hopper" in got["edited"] and "Rear Admiral" in got["edited"]
    assert "already exists: lead " in got["duplicate"]
    assert got["deleted"].startswith("Deleted grace@navy.example")
    assert got["export_name"].startswith("lead-") and got["export_name"].endswith("-export.json")
    assert got["export"]["lead"]["email"] == "grace@navy.example"
    assert got["export"]["lead"]["fields"] == {"rank": "Rear Admiral"}
    assert [a["via"] for a in got["export"]["audit"]] == ["web"]
    assert got["axe"] == {"delete": [], "import": [], "job": got["axe"]["job"]}
    assert got["axe"]["job"] in ([], "finished first")
    assert got["small_imported"] == "2"
    assert got["small_lines"] == ["3", "5"]
    assert got["job_bar"] == 1 and got["big_imported"] == "6000"
    assert (got["all_ticked"], got["none_ticked"]) == (10, 0)
    assert got["added_notice"] == "Added 3 to Q3 webinar."
    assert got["members"] == ["page001@many.example", "page002@many.example"]
    rows = list(csv.DictReader(io.StringIO(got["csv"])))
    assert [r["email"] for r in rows] == [f"page00{i}@many.example" for i in range(10)]
    assert rows[0]["first_name"] == "Pat0" and "score" in rows[0]


async def test_a_salesperson_sees_only_their_leads_and_no_tracking(site: Site, served: str) -> None:
    if "postgresql" in site.settings.database_url:
        pytest.skip("one engine is enough for the browser walk; the pages are engine-blind")
    await _seed(site)
    got = await asyncio.to_thread(_walk_seller, served, site.email("salesperson"), site.password)
    assert got["errors"] == []
    assert got["emails"] == ["mine0@sales.example", "mine1@sales.example"]
    assert got["headers"][0].startswith("Select")  # the tick boxes' column
    assert got["headers"][1:] == ["Email", "Name", "Time zone", "Added"]
    assert (got["engagement"], got["score"]) == (0, 0)
    assert got["axe"] == []
    assert "score" not in got["text"].lower() and "score" not in got["lead"].lower()
    assert "Timeline" not in got["lead"] and "Opens" not in got["lead"]
