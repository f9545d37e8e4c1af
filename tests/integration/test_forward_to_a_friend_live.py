"""Forward to a friend, end to end against a running `mailbeacon serve`, nothing mocked.

A campaign created with `forward_link: true` is sent through real SMTP: the lead's mail
carries a visible "Forward to a friend" link. The lead fills in the /f/ form for a friend
with a note; the friend receives their own tracked copy over SMTP, note on top. The
friend opens it (their pixel, a mail client's agent): the campaign's report counts a
forward, the open is an event with `forwarded: true` on the friend's message, which
belongs to the campaign, and nothing of it is the lead's own open.
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
import lxml.html
import pytest
from live_server import MAILBEACON, Live, Mailbox

from mailbeacon.tokens import Kind, Signer

pytestmark = pytest.mark.slow

# The server's key (live_server.py: MAILBEACON_SECRET_KEYS), to read the ids in a token.
SIGNER = Signer((("live1", b"integration-secret"),))
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
HTML = '<p>Hello {{first_name}}, our <a href="https://example.com/pricing">pricing</a>.</p>'
NOTE = "Bo, this is the <offer> I told you about & more.\r\nAnn"


def html_part(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/html part")


def text_part(mail: Message) -> str:
    for part in mail.walk():
        if part.get_content_type() == "text/plain":
            raw = part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            return raw.replace("\r\n", "\n")
    raise AssertionError("no text/plain part")


def eventually(probe: Callable[[], Any], what: str, within: float = 10) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_forwarded_campaign_mail_reaches_the_friend_and_counts_as_a_forward(
    live: Live, mailbox: tuple[Mailbox, str]
) -> None:
    box, _ = mailbox
    with live.client() as api:
        ann = api.post(
            "/api/v1/leads",
            json={"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee"},
        ).json()
        # A single message asks for the link itself; GET shows what was stored.
        one = {"lead_id": ann["id"], "subject": "Hi", "html": HTML, "send": False}
        single = api.post("/api/v1/messages", json=one | {"forward_link": True}).json()
        assert single["forward_link"] is True and "Forward to a friend" in single["html"]
        assert api.get(f"/api/v1/messages/{single['id']}").json()["forward_link"] is True
        default = api.post("/api/v1/messages", json=one).json()
        assert default["forward_link"] is False and "Forward to a friend" not in default["html"]

        lst = api.post("/api/v1/lists", json={"name": "Customers"}).json()
        api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [ann["id"]]})
        body = {"name": "Pricing", "subject": "Hi {{first_name}}", "html": HTML}
        created = api.post(
            "/api/v1/campaigns", json=body | {"list_id": lst["id"], "forward_link": True}
        )
        assert created.status_code == 201, created.text
        campaign = created.json()
        assert campaign["forward_link"] is True
        assert api.get(f"/api/v1/campaigns/{campaign['id']}").json()["forward_link"] is True
        assert api.post(f"/api/v1/campaigns/{campaign['id']}/send").status_code == 202

        # The lead's mail, over SMTP: a visible footer link to /f/{token} for their message.
        [mail] = box.wait(1)
        assert mail["To"] == "Ann Lee <ann@example.com>"
        footer = lxml.html.document_fromstring(html_part(mail)).find_class("mailbeacon-footer")
        links = {a.text: a.get("href") for a in footer[0].iter("a")}
        forward = links["Forward to a friend"]
        assert forward.startswith(f"{live.base}/f/")
        lead_token = SIGNER.verify(forward.rsplit("/", 1)[1])
        assert (lead_token.kind, lead_token.lead_id) == (Kind.FORWARD, ann["id"])
        lead_message = lead_token.message_id
        assert f"Forward to a friend]({forward})" in text_part(mail)

        # The lead fills in the friend's form, as a browser would.
        form = httpx.get(forward)
        assert form.status_code == 200
        nonce = re.search(r'name=nonce value="([^"]+)"', form.text)
        assert nonce is not None
        fields = {"nonce": nonce[1], "email": "bo@example.com", "name": "Bo Berg", "note": NOTE}
        sent = httpx.post(forward, data=fields)
        assert sent.status_code == 200, sent.text

        # The friend's own copy, over SMTP, with Ann's note on top (escaped).
        friend_mail = box.wait(2)[1]
        assert friend_mail["To"] == "Bo Berg <bo@example.com>"
        assert friend_mail["Subject"] == "Hi Bo"  # merged for the friend, as the body is
        friend_html = html_part(friend_mail)
        first = lxml.html.document_fromstring(friend_html).find("body")[0]
        assert first.get("class") == "mailbeacon-note"
        assert [p.text for p in first] == [
            "Ann Lee forwarded this email to you and wrote:",
            "Bo, this is the <offer> I told you about & more.\nAnn",
        ]
        assert "the &lt;offer&gt; I told you about &amp; more." in friend_html
        assert text_part(friend_mail).startswith(
            "Ann Lee forwarded this email to you and wrote:\n"
            "Bo, this is the <offer> I told you about & more.\nAnn\n\n"
        )
        [pixel] = re.findall(rf'src="({re.escape(live.base)}/o/[^"]+)"', friend_html)
        friend_token = SIGNER.verify(pixel.rsplit("/", 1)[1].removesuffix(".gif"))
        friend_message = friend_token.message_id
        assert friend_message != lead_message and friend_token.lead_id != ann["id"]
        copy = api.get(f"/api/v1/messages/{friend_message}").json()
        assert (copy["campaign_id"], copy["forwarded_from_message_id"]) == (
            campaign["id"],
            lead_message,
        )
        assert copy["forward_link"] is True and copy["lead_id"] == friend_token.lead_id

        # The friend opens it in their mail client.
        opened = httpx.get(pixel, headers={"user-agent": THUNDERBIRD})
        assert opened.status_code == 200 and opened.headers["content-type"] == "image/gif"
        events = eventually(
            lambda: api.get(f"/api/v1/messages/{friend_message}/events").json(),
            "the friend's open event",
        )
        [open_event] = events
        assert {k: open_event[k] for k in ("type", "verdict", "forwarded", "campaign_id")} == {
            "type": "open",
            "verdict": "human",
            "forwarded": True,
            "campaign_id": campaign["id"],
        }
        assert open_event["lead_id"] == friend_token.lead_id

        # The lead's own message shows the forward they made, and no open.
        lead_events = api.get(f"/api/v1/messages/{lead_message}/events").json()
        assert [(e["type"], e["lead_id"]) for e in lead_events] == [("forward", ann["id"])]

        report = eventually(
            lambda: (
                r
                if (r := api.get(f"/api/v1/campaigns/{campaign['id']}/report").json())[
                    "opens_total"
                ]
                == 1
                else None
            ),
            "the report to count the friend's open",
        )
        assert report["sent"] == 1  # the friend's copy is not a send of the campaign
        assert report["forwards"] == 1 and report["forward_sends"] == 1
        assert report["human_opens_unique"] == 0 and report["open_rate"] == 0
        assert report["inferred_opens"] == 0 and report["clicks_unique"] == 0


def cli(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILBEACON, *args], env=live.env, capture_output=True, text=True, timeout=60
    )


def test_cli_creates_a_campaign_with_the_forward_link(
    live: Live, mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    box, _ = mailbox
    with live.client() as api:
        lead = api.post("/api/v1/leads", json={"email": "cy@example.com"}).json()
        lst = api.post("/api/v1/lists", json={"name": "CLI"}).json()
        api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [lead["id"]]})
    html = tmp_path / "mail.html"
    html.write_text(HTML, encoding="utf-8")
    common = ["campaign", "create", "--company", str(live.company_id), "--name", "From CLI",
              "--subject", "Hello", "--html", str(html)]  # fmt: skip

    missing = cli(live, *common, "--list", "999999", "--forward-link")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error (--list-id): list 999999 does not exist"

    made = cli(live, *common, "--list", str(lst["id"]), "--forward-link", "--json")
    assert made.returncode == 0, made.stderr
    campaign = json.loads(made.stdout)
    assert (campaign["status"], campaign["forward_link"]) == ("draft", True)
    plain = cli(live, *common, "--list", str(lst["id"]))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip().endswith("created (draft); forward-to-a-friend link off")

    sent = cli(live, "campaign", "send", str(campaign["id"]), "--json")
    assert sent.returncode == 0, sent.stderr
    [mail] = box.wait(1)
    footer = lxml.html.document_fromstring(html_part(mail)).find_class("mailbeacon-footer")
    assert [a.text for a in footer[0].iter("a")] == ["Forward to a friend", "Unsubscribe"]
    assert footer[0][0].get("href").startswith(f"{live.base}/f/")
