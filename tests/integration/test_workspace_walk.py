"""The workspace walk: a marketing manager does the whole job in the browser, by label.

A real `mailbeacon serve` (stages running), a real SMTP server (aiosmtpd), Debian's
Chromium. Leads come in by CSV (custom field `company`, two bad rows reported by line);
the manager composes a campaign with `{{company}}` in the subject and the pixel in the
footer, previews it as a lead, sends a test (counted nowhere), sends it (the
confirmation names the count) and watches the progress bar finish. One received mail
is opened in the browser with images on, and that lead appears under "Opened" on the
campaign page without a reload; "Export CSV" downloads and reads back. No script
errors; a salesperson and a sales manager get 403 on every campaign page and see
none of the manager's leads. Screenshots for the README.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from live_server import CHROMIUM, CHROMIUM_ARGS, Live, Mailbox, _cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's /usr/bin/chromium"),
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
# tests/web/axe.py (axe-core through DevTools), loaded by path: test folders are no packages.
_AXE = importlib.util.spec_from_file_location("axe", Path(__file__).parents[1] / "web" / "axe.py")
assert _AXE and _AXE.loader
axe = importlib.util.module_from_spec(_AXE)
_AXE.loader.exec_module(axe)
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
PASSWORD = "marketing-pass-1"
SALES_ROLES = ("salesperson", "sales_manager")
IMPORTED = ("ada@example.com", "bo@example.com", "cy@example.com")
# Line 1 is the header; lines 3 and 5 are bad (no address, a broken one).
LEADS_CSV = (
    "email,first_name,last_name,company\n"
    "ada@example.com,Ada,Lovelace,Analytical Engines\n"
    ",Nobody,,Void Ltd\n"
    "bo@example.com,Bo,Diddley,Chess Records\n"
    "not-an-address,Bad,Row,Broken Inc\n"
    "cy@example.com,Cy,Twombly,Paintworks\n"
)
HTML = (
    "<html><body><h1>Spring news for {{company}}</h1>"
    '<p>Hello {{first_name}}, see our <a href="https://example.com/pricing">pricing</a>.</p>'
    "</body></html>"
)


def html_part(mail: object) -> str:
    for part in mail.walk():  # type: ignore[attr-defined]
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


def shoot(page: Any, path: Path) -> None:
    """The whole page at 1280 px: a viewport as tall as the page, so frames below the
    fold are painted too (a full-page shot leaves them blank)."""
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height})
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})


def who_engaged_box(page: Any) -> dict[str, float]:
    """The "Who engaged" part of the campaign page, in page coordinates."""
    box = page.locator("#who-engaged").evaluate(
        "e => { const r = e.getBoundingClientRect(); return {x: 0, y: r.top + scrollY - 16,"
        " width: 1280, height: r.height + 32}; }"
    )
    return box  # type: ignore[no-any-return]


def _import(live: Live) -> int:
    with live.client() as api:
        made = api.post("/api/v1/lists", json={"name": "Spring customers"})
        assert made.status_code == 201, made.text
        list_id = int(made.json()["id"])
        files = {"file": ("leads.csv", LEADS_CSV.encode(), "text/csv")}
        answer = api.post("/api/v1/leads/import", files=files, data={"list_id": str(list_id)})
        assert answer.status_code == 200, answer.text
        result = answer.json()
    assert result["imported"] == 3 and result["updated"] == 0
    assert [r["line"] for r in result["rejected"]] == [3, 5]
    return list_id


def test_marketing_manager_walks_the_whole_job(live: Live, mailbox: tuple[Mailbox, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    box, _ = mailbox
    list_id = _import(live)
    for role in SALES_ROLES:
        _cli(
            live.env, "user", "create", "--company", str(live.company_id), "--email",
            f"{role}@acme.example.com", "--role", role, "--password", "sales-pass-1",
        )  # fmt: skip
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        page.goto(f"{live.base}/login")
        page.get_by_label("Email").fill("mm@acme.example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live.base}/campaigns")
        page.get_by_role("link", name="New campaign").click()
        expect(page).to_have_url(f"{live.base}/campaigns/new")

        # Compose, by label.
        page.get_by_label("Name", exact=True).fill("Spring news")
        page.get_by_label("Subject").fill("News for {{company}}")
        page.get_by_label("List").select_option(str(list_id))
        page.get_by_label("HTML").fill(HTML)
        page.get_by_label("Pixel placement").select_option("footer")
        page.get_by_label("Pixel format").select_option("png")
        page.get_by_label("Forward to a friend link").check()
        expect(page.get_by_label("Track opens")).to_be_checked()
        expect(page.get_by_label("Track clicks")).to_be_checked()
        # The live preview follows the textarea.
        live_frame = page.frame_locator("#live-preview")
        expect(live_frame.locator("h1")).to_have_text("Spring news for {{company}}")

        # Preview as a lead: the company filled in, the pixel and tracked links, the size.
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview-subject")).to_have_text(
            re.compile(r"News for (Analytical Engines|Chess Records|Paintworks)")
        )
        expect(page.locator("#preview-warnings")).to_contain_text("bytes of HTML")
        shown = page.frame_locator("#lead-preview")
        expect(shown.locator("h1")).to_contain_text("Spring news for ")
        expect(shown.locator("img[src*='/o/']")).to_have_count(1)
        expect(shown.locator("a[href*='/c/']").first).to_be_attached()
        expect(live_frame.locator("h1")).to_have_text("Spring news for {{company}}")
        shoot(page, DOCS / "screenshot-composer.png")
        violations = {"composer": axe.check_axe(page)}
        # The phone width: nothing wider than the screen.
        page.set_viewport_size({"width": 390, "height": 900})
        page.screenshot(path="/tmp/x/composer-390.png", full_page=True)
        widest = page.evaluate(
            "Math.max(...[...document.querySelectorAll('main *')]"
            ".map(e => e.getBoundingClientRect().right))"
        )
        assert widest <= 390, widest  # the header is the shell's (base.html)
        page.set_viewport_size({"width": 1280, "height": 900})

        # Send a test: it arrives, marked, and nothing counts it.
        page.get_by_label("Test address").fill("me@agency.example")
        page.get_by_role("button", name="Send test").click()
        expect(page.get_by_role("status").first).to_contain_text("Test sent to me@agency.example")
        test_mail = box.wait(1)[0]
        assert test_mail["To"] == "me@agency.example"
        assert test_mail["Subject"].startswith("[Test] News for ")
        campaign_id = int(
            re.search(
                r"/campaigns/(\d+)/edit", page.locator("#composer").get_attribute("action")
            ).group(1)
        )  # type: ignore[union-attr]
        with live.client() as api:
            progress = api.get(f"/api/v1/campaigns/{campaign_id}/progress").json()
        assert (progress["status"], progress["sent"], progress["failed"]) == ("draft", 0, 0)

        # Send now: the confirmation names the count, then the progress bar finishes.
        page.get_by_role("button", name="Send now", exact=True).click()
        expect(page.get_by_role("heading", name="Send to 3 leads?")).to_be_visible()
        violations["confirm"] = axe.check_axe(page)
        page.get_by_role("button", name="Send to 3 leads").click()
        expect(page.get_by_label("Sending progress")).to_be_visible()
        expect(page.locator("#send-status")).to_contain_text("3 sent", timeout=30_000)
        expect(page.locator("#send-status")).to_contain_text("done")
        assert page.get_by_label("Sending progress").evaluate("p => p.value") == 100
        violations["sending"] = axe.check_axe(page)
        mails = box.wait(4)
        real = [m for m in mails[1:] if not m["Subject"].startswith("[Test]")]
        assert sorted(parseaddr(m["To"])[1] for m in real) == [
            "ada@example.com", "bo@example.com", "cy@example.com",
        ]  # fmt: skip
        ada = next(m for m in real if parseaddr(m["To"])[1] == "ada@example.com")
        assert ada["Subject"] == "News for Analytical Engines"
        html = html_part(ada)
        assert html.rfind("/o/") > html.find("pricing")  # the pixel in the footer

        # The campaign page, open while Ada reads her mail: she appears under "Opened".
        page.get_by_role("link", name="See the campaign's report").click()
        opened = page.locator("#engaged-opened")
        expect(opened.get_by_role("heading", name="Opened")).to_be_visible()
        expect(opened).to_contain_text("No leads yet.")
        for heading in ("Clicked", "Forwarded", "Not opened", "Privacy-protected",
                        "Unsubscribed", "Bounced"):  # fmt: skip
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        marker = page.evaluate("window.__walk = 1")  # gone if the page reloads
        del marker
        reader = browser.new_context(user_agent=THUNDERBIRD).new_page()
        reader.set_content(html, wait_until="load")
        reader.wait_for_timeout(300)
        expect(opened.get_by_role("link", name="Ada Lovelace")).to_be_visible(timeout=20_000)
        assert page.evaluate("window.__walk") == 1
        expect(opened.get_by_role("link", name="Ada Lovelace")).to_have_attribute(
            "href", re.compile(r"^/leads/\d+$")
        )
        expect(page.locator("#engaged-not_opened")).not_to_contain_text("ada@example.com")
        violations["campaign"] = axe.check_axe(page)
        assert violations == {k: [] for k in violations}, violations

        page.screenshot(
            path=str(DOCS / "screenshot-engaged.png"), clip=who_engaged_box(page), full_page=True
        )

        # Export CSV, read back.
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert [(r["engagement"], r["email"]) for r in rows if r["engagement"] == "opened"] == [
            ("opened", "ada@example.com")
        ]
        assert sorted(r["email"] for r in rows if r["engagement"] == "not_opened") == [
            "bo@example.com", "cy@example.com",
        ]  # fmt: skip
        assert errors == [], "\n".join(errors)

        # The sales roles, sales manager included, see no tracking data, and none of
        # the manager's leads: not in the list, the search, the export or the list page.
        ada_page = opened.get_by_role("link", name="Ada Lovelace").get_attribute("href")
        for role in SALES_ROLES:
            sales = browser.new_context().new_page()
            sales.goto(f"{live.base}/login")
            sales.get_by_label("Email").fill(f"{role}@acme.example.com")
            sales.get_by_label("Password").fill("sales-pass-1")
            sales.get_by_role("button", name="Log in").click()
            for path in ("/campaigns", "/campaigns/new", f"/campaigns/{campaign_id}",
                         f"/campaigns/{campaign_id}/engaged/opened",
                         f"/campaigns/{campaign_id}/engaged.csv"):  # fmt: skip
                answer = sales.request.get(f"{live.base}{path}")
                assert answer.status == 403, (role, path)
                assert "ada@example.com" not in answer.text()
            for path in ("/leads", "/leads?q=ada", "/leads/export.csv", f"/lists/{list_id}"):
                answer = sales.request.get(f"{live.base}{path}")
                assert answer.status == 200, (role, path)
                shown = [e for e in IMPORTED if e in answer.text()]
                assert shown == [], (role, path, shown)
            assert sales.request.get(f"{live.base}{ada_page}").status == 404, role
            sales.context.close()
        browser.close()
