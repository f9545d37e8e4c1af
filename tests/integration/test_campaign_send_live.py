"""A campaign sent through the API of a running server, and one from the command line:
every subscribed lead gets one tracked copy, the unsubscribed are skipped and counted."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import httpx
import pytest
from live_server import MAILBEACON, Live, Mailbox

pytestmark = pytest.mark.slow


def _campaign(api: httpx.Client, emails: list[str], unsubscribe: str | None) -> dict[str, Any]:
    ids = [api.post("/api/v1/leads", json={"email": e}).json()["id"] for e in emails]
    lst = api.post("/api/v1/lists", json={"name": "Newsletter"}).json()
    assert api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": ids}).status_code == 200
    if unsubscribe:
        # The lead's own one-click unsubscribe, as their mail client would send it.
        msg = api.post(
            "/api/v1/messages",
            json={"lead_id": ids[emails.index(unsubscribe)], "subject": "x", "html": "<p>x</p>",
                  "send": False},
        ).json()  # fmt: skip
        url = msg["headers"]["List-Unsubscribe"].split(",")[0].strip("<> ")
        r = httpx.post(url, content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
        assert r.status_code == 200
    body = {"name": "Spring", "subject": "Hi {{first_name}}", "list_id": lst["id"],
            "html": '<p><a href="https://example.com/spring">Spring</a></p>'}  # fmt: skip
    return api.post("/api/v1/campaigns", json=body).json()  # type: ignore[no-any-return]


def _wait_sent(api: httpx.Client, campaign_id: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = api.get(f"/api/v1/campaigns/{campaign_id}").json()
        if c["status"] == "sent":
            return c  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"campaign still {c['status']}")


def test_api_send_reaches_every_subscribed_lead_once(
    live: Live, mailbox: tuple[Mailbox, str]
) -> None:
    box, _ = mailbox
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    with live.client() as api:
        campaign = _campaign(api, emails, unsubscribe="b@example.com")
        r = api.post(f"/api/v1/campaigns/{campaign['id']}/send")
        assert r.status_code == 202 and r.json()["status"] == "queued"
        again = api.post(f"/api/v1/campaigns/{campaign['id']}/send")
        assert again.status_code == 409
        done = _wait_sent(api, campaign["id"])
        assert (done["sent_count"], done["skipped_count"], done["failed_count"]) == (2, 1, 0)
        report = api.get(f"/api/v1/campaigns/{campaign['id']}/report").json()
        assert report["sent"] == 2
    got = sorted(m["To"] for m in box.wait(2))
    assert got == ["a@example.com", "c@example.com"]
    time.sleep(0.5)
    assert len(box.received) == 2


def test_cli_send_shows_progress_and_counts(live: Live, mailbox: tuple[Mailbox, str]) -> None:
    box, _ = mailbox
    with live.client() as api:
        campaign = _campaign(api, ["x@example.com", "y@example.com"], unsubscribe=None)
    out = subprocess.run(
        [MAILBEACON, "campaign", "send", str(campaign["id"]), "--json"],
        env=live.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"id": campaign["id"], "sent": 2, "skipped": 0, "failed": 0}
    assert len(box.wait(2)) == 2
    again = subprocess.run(
        [MAILBEACON, "campaign", "send", str(campaign["id"])],
        env=live.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 1 and "sent already" in again.stderr
