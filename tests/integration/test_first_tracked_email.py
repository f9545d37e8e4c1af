"""The story of a first tracked email, end to end, with nothing mocked.

A marketing manager sends a message through the API of a running `mailbeacon serve`; a
real SMTP server receives it; headless Chromium renders the received HTML like a mail
client. With images on, one open is recorded and classified within seconds; with
images blocked, none is; a click is recorded, redirects where the email said, and
counts in the campaign report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from email.message import Message
from typing import Any

import httpx
import pytest
from live_server import CHROMIUM, CHROMIUM_ARGS, Live, Mailbox
from sqlalchemy import update

from mailbeacon.store import Database, now
from mailbeacon.store.schema import messages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="needs chromium"),
]

# Headless Chromium announces itself as HeadlessChrome, which enrichment rightly calls a
# bot; a reader's mail client and browser do not.
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HTML = """<html><head><style>p { color: #333 }</style></head><body>
<p>Hello {{first_name}}, our <a href="https://example.com/pricing">pricing</a>.</p>
</body></html>"""


def html_part(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


def render(html: str, *, images: bool, click: str | None = None) -> None:
    """Open the mail's HTML in headless Chromium, as a mail client with or without
    images would; optionally click a link."""
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + ([] if images else ["--blink-settings=imagesEnabled=false"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(user_agent=CHROME if click else THUNDERBIRD)
        page.set_content(html, wait_until="load")
        page.wait_for_timeout(300)
        if click:
            # There is no network here: watch the tracked hop, not the landing page.
            with page.expect_response(lambda r: "/c/" in r.url) as hop:
                page.click(f"text={click}")
            assert hop.value.status == 302
            assert hop.value.headers["location"] == "https://example.com/pricing"
        browser.close()


def send(api: httpx.Client, lead_id: int, **extra: Any) -> dict[str, Any]:
    body = {"lead_id": lead_id, "subject": "Hello", "html": HTML, "send": True, **extra}
    r = api.post("/api/v1/messages", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def read_later(live: Live, message_id: int, minutes: int = 10) -> None:
    """Move the send back in time, so the story reads as a reader coming back to the
    mail later (timing alone never makes a verdict: see docs/tracking.md)."""

    async def run() -> None:
        db = Database.unpooled(live.database)
        async with db.begin() as conn:
            await conn.execute(
                update(messages)
                .where(messages.c.id == message_id)
                .values(sent_at=now() - dt.timedelta(minutes=minutes))
            )
        await db.dispose()

    asyncio.run(run())


def wait_for_events(api: httpx.Client, message_id: int, count: int, within: float) -> list[dict]:
    deadline = time.monotonic() + within
    while True:
        events = api.get(f"/api/v1/messages/{message_id}/events").json()
        if len(events) >= count or time.monotonic() > deadline:
            return events  # type: ignore[no-any-return]
        time.sleep(0.05)


def test_mail_arrives_tracked_and_chromium_opens_it(
    live: Live, mailbox: tuple[Mailbox, str]
) -> None:
    box, _ = mailbox
    with live.client() as api:
        lead = api.post("/api/v1/leads", json={"email": "ada@example.com", "first_name": "Ada"})
        sent = send(api, lead.json()["id"])
        mail = box.wait(1)[0]

        # The SMTP round trip: pixel, tracked links, unsubscribe headers, a text part.
        html = html_part(mail)
        assert f"{live.base}/o/" in html and 'width="1"' in html
        assert f"{live.base}/c/" in html and 'href="https://example.com/pricing"' not in html
        assert "Hello Ada" in html
        assert mail["List-Unsubscribe"].startswith(f"<{live.base}/u/")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert any(p.get_content_type() == "text/plain" for p in mail.walk())
        assert [k["url"] for k in sent["links"] if k["kind"] == "link"] == [
            "https://example.com/pricing"
        ]

        # Images on: the pixel loads once, and becomes an open event within 2 seconds.
        render(html, images=True)
        started = time.monotonic()
        assert api.get(f"/api/v1/messages/{sent['id']}").json()["hits"]["open"] == 1
        events = wait_for_events(api, sent["id"], 1, within=2.0)
        assert [e["type"] for e in events] == ["open"], events
        assert time.monotonic() - started <= 2.0
        assert events[0]["verdict"] == "human", events[0]
        assert events[0]["client"] == "Thunderbird" and not events[0]["forwarded"]

        # A click is recorded and goes where the email said.
        read_later(live, sent["id"])
        render(html, images=False, click="pricing")
        msg = api.get(f"/api/v1/messages/{sent['id']}").json()
        assert msg["hits"] == {"open": 1, "click": 1}


def test_images_blocked_records_no_open_and_a_click_implies_one(
    live: Live, mailbox: tuple[Mailbox, str]
) -> None:
    box, _ = mailbox
    with live.client() as api:
        lead = api.post("/api/v1/leads", json={"email": "bo@example.com", "first_name": "Bo"})
        sent = send(api, lead.json()["id"])
        html = html_part(box.wait(1)[0])

        render(html, images=False)
        time.sleep(0.5)
        assert api.get(f"/api/v1/messages/{sent['id']}").json()["hits"]["open"] == 0

        read_later(live, sent["id"])
        render(html, images=False, click="pricing")
        events = wait_for_events(api, sent["id"], 2, within=5.0)
        kinds = sorted((e["type"], e["inferred"]) for e in events)
        assert kinds == [("click", False), ("open", True)], [
            (e["type"], e["verdict"], e["reason"]) for e in events
        ]


def test_ten_megabyte_html_is_refused_and_nothing_stored(live: Live) -> None:
    with live.client() as api:
        lead = api.post("/api/v1/leads", json={"email": "big@example.com"}).json()
        body = {"lead_id": lead["id"], "subject": "Big", "html": "<p>" + "x" * 10_000_000}
        r = api.post("/api/v1/messages", json=body)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        assert api.get(f"/api/v1/leads/{lead['id']}/activity").json() == []
        # Nothing half-written: the next message gets the first id.
        small = api.post(
            "/api/v1/messages",
            json={"lead_id": lead["id"], "subject": "S", "html": "<p>x</p>", "send": False},
        )
        assert small.status_code == 201 and small.json()["id"] == 1
