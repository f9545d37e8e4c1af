"""Tracking off, end to end against a running `mailbeacon serve`, real SMTP, nothing mocked.

A lead who asked not to be tracked (`PATCH /api/v1/leads/{id}` `tracking: false`) gets
a campaign with no pixel and no tracked link (the received MIME is parsed), while the
lead beside them gets both; the report counts them in `not_tracked` and leaves them out
of the rates. A friend they forward it to is a new person: the friend's copy follows
the friend's own setting. A single message can switch opens or clicks off, and a lead
who is not tracked gets neither, whatever the message asks; the command line sets a
campaign's switches too.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import MAILBEACON, Live, Mailbox

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
HTML = '<p>Hello {{first_name}}, our <a href="https://example.com/spring">offer</a>.</p>'


def part(mail: Message, kind: str) -> str:
    for p in mail.walk():
        if p.get_content_type() == f"text/{kind}":
            return p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/{kind} part")


def eventually(probe: Callable[[], Any], what: str, within: float = 15) -> Any:
    deadline = time.monotonic() + within
    while True:
        if value := probe():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def tracked_parts(live: Live, mail: Message) -> tuple[bool, bool]:
    """(has a pixel, has a tracked link), over both the HTML and the text part."""
    body = part(mail, "html") + part(mail, "plain")
    return f"{live.base}/o/" in body, f"{live.base}/c/" in body


def assert_unsubscribe_stays(live: Live, mail: Message) -> None:
    assert f"{live.base}/u/" in part(mail, "html")
    assert mail["List-Unsubscribe"].startswith(f"<{live.base}/u/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def to(box: Mailbox, address: str) -> Message:
    [mail] = [m for m in box.received if address in m["To"]]
    return mail


def test_a_lead_not_tracked_gets_an_untracked_campaign_and_is_left_out_of_the_rates(
    live: Live, mailbox: tuple[Mailbox, str]
) -> None:
    box, _ = mailbox
    with live.client() as api:
        ann = api.post("/api/v1/leads", json={"email": "ann@example.com", "first_name": "Ann"})
        bob = api.post("/api/v1/leads", json={"email": "bob@example.com", "first_name": "Bob"})
        ann, bob = ann.json(), bob.json()
        assert ann["tracking"] is True and bob["tracking"] is True
        # Bob asks not to be tracked.
        patched = api.patch(f"/api/v1/leads/{bob['id']}", json={"tracking": False})
        assert patched.status_code == 200 and patched.json()["tracking"] is False
        assert api.get(f"/api/v1/leads/{bob['id']}").json()["tracking"] is False
        bad = api.patch(f"/api/v1/leads/{bob['id']}", json={"tracking": "nope"})
        assert bad.status_code == 422

        lst = api.post("/api/v1/lists", json={"name": "Spring"}).json()
        api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [ann["id"], bob["id"]]})
        body = {"name": "Spring", "subject": "Hi {{first_name}}", "html": HTML}
        campaign = api.post(
            "/api/v1/campaigns", json=body | {"list_id": lst["id"], "forward_link": True}
        ).json()
        assert campaign["tracking"] == {"opens": True, "clicks": True}
        # A PATCH changes only the switch it names.
        url = f"/api/v1/campaigns/{campaign['id']}"
        assert api.patch(url, json={"tracking": {"opens": False}}).json()["tracking"] == {
            "opens": False,
            "clicks": True,
        }
        api.patch(url, json={"tracking": {"opens": True}})
        assert api.get(url).json()["tracking"] == {"opens": True, "clicks": True}
        assert api.post(f"{url}/send").status_code == 202

        box.wait(2)
        ann_mail, bob_mail = to(box, "ann@example.com"), to(box, "bob@example.com")
        assert tracked_parts(live, ann_mail) == (True, True)
        assert tracked_parts(live, bob_mail) == (False, False)
        assert 'href="https://example.com/spring"' in part(bob_mail, "html")
        assert "https://example.com/spring" in part(bob_mail, "plain")
        for mail in (ann_mail, bob_mail):
            assert_unsubscribe_stays(live, mail)

        # Ann opens hers; Bob cannot be seen, whatever he does.
        [pixel] = re.findall(rf'src="({re.escape(live.base)}/o/[^"]+)"', part(ann_mail, "html"))
        assert httpx.get(pixel, headers={"user-agent": THUNDERBIRD}).status_code == 200

        def opened() -> dict[str, Any] | None:
            r = api.get(f"{url}/report").json()
            return r if r["human_opens_unique"] == 1 else None

        report = eventually(opened, "Ann's open in the report")
        assert report["sent"] == 2 and report["not_tracked"] == 1
        assert report["clicks_not_tracked"] == 1
        assert report["open_rate"] == 1.0  # 1 of the 1 recipient whose opens could be seen
        assert report["estimated_open_rate"] == 1.0
        assert report["click_rate"] == 0.0

        # Bob forwards it to Cy, a new person: Cy's copy is tracked as Cy's own setting says.
        [forward] = re.findall(rf'href="({re.escape(live.base)}/f/[^"]+)"', part(bob_mail, "html"))
        nonce = re.search(r'name=nonce value="([^"]+)"', httpx.get(forward).text)
        assert nonce is not None
        sent = httpx.post(forward, data={"nonce": nonce[1], "email": "cy@example.com"})
        assert sent.status_code == 200, sent.text
        box.wait(3)
        cy_mail = to(box, "cy@example.com")
        assert tracked_parts(live, cy_mail) == (True, True)
        # The friend's copy is not one of the campaign's recipients: nothing changes.
        again = api.get(f"{url}/report").json()
        assert (again["sent"], again["not_tracked"]) == (2, 1)


def test_a_single_message_switches_tracking_and_the_lead_setting_wins(
    live: Live, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, _ = mailbox
    with live.client() as api:
        dee = api.post("/api/v1/leads", json={"email": "dee@example.com"}).json()
        eve = api.post("/api/v1/leads", json={"email": "eve@example.com", "tracking": False}).json()
        assert eve["tracking"] is False

        one = {"subject": "Hi", "html": HTML, "send": True}
        no_opens = api.post(
            "/api/v1/messages",
            json=one | {"lead_id": dee["id"], "tracking": {"opens": False, "clicks": True}},
        )
        assert no_opens.status_code == 201, no_opens.text
        assert no_opens.json()["tracking"] == {"opens": False, "clicks": True}
        asked = api.post(
            "/api/v1/messages",
            json=one | {"lead_id": eve["id"], "tracking": {"opens": True, "clicks": True}},
        ).json()
        assert asked["tracking"] == {"opens": False, "clicks": False}
        shown = api.get(f"/api/v1/messages/{asked['id']}").json()
        assert shown["tracking"] == {"opens": False, "clicks": False}
        assert "track_opens" not in shown

        box.wait(2)
        assert tracked_parts(live, to(box, "dee@example.com")) == (False, True)
        eve_mail = to(box, "eve@example.com")
        assert tracked_parts(live, eve_mail) == (False, False)
        assert_unsubscribe_stays(live, eve_mail)
        assert [k["kind"] for k in asked["links"]] == ["unsubscribe"]

    # The command line sets the same switches.
    with live.client() as api:
        lst = api.post("/api/v1/lists", json={"name": "CLI"}).json()
    html = tmp_path / "mail.html"
    html.write_text(HTML, encoding="utf-8")
    made = subprocess.run(
        [MAILBEACON, "campaign", "create", "--company", str(live.company_id), "--name", "CLI",
         "--subject", "Hi", "--html", str(html), "--list", str(lst["id"]), "--no-track-clicks",
         "--json"],
        env=live.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["tracking"] == {"opens": True, "clicks": False}
