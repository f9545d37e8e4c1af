"""Numbers a marketer can trust (issue 11): a real campaign sent through SMTP, read by a
known mix of people and machines through the real edge, judged by the real enrich
stage, and the report, the scores and the reminders that come out of it.

Readers' addresses are faked with X-Forwarded-For from loopback (serve.py trusts it).
Everyone acts within seconds of delivery: timing alone must not make anyone a machine.
"""

from __future__ import annotations

import asyncio
from email.message import Message
from typing import Any

import httpx
import lxml.html
from automation_harness import Mailbox, Server, World, eventually

Stage = tuple[World, Server]

OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
EDGE = CHROME + " Edg/120.0.2210.91"
HTML = (
    '<p>Spring is here.</p><p><a href="https://acme.test/pricing">Pricing</a> '
    '<a href="https://acme.test/docs">Docs</a> <a href="https://acme.test/blog">Blog</a></p>'
)
READERS = ("alice", "bob", "carol", "dave", "erin", "frank")


class Copy:
    """One lead's received mail: its pixel, its links by label, its honeypot."""

    def __init__(self, mail: Message) -> None:
        part = next(p for p in mail.walk() if p.get_content_type() == "text/html")
        doc = lxml.html.fromstring(part.get_payload(decode=True).decode())
        self.pixel = next(i.get("src") for i in doc.iter("img") if "/o/" in i.get("src", ""))
        self.links = {a.text_content().strip(): a.get("href") for a in doc.iter("a")}
        self.honeypot = next(a.get("href") for a in doc.iter("a") if a.get("aria-hidden"))
        self.unsubscribe = mail["List-Unsubscribe"].split(",")[0].strip("<> ")


def fetch(url: str, ip: str, ua: str | None, method: str = "GET") -> int:
    headers = {"x-forwarded-for": ip}
    with httpx.Client(timeout=10) as client:
        if ua is None:
            del client.headers["user-agent"]
        else:
            headers["user-agent"] = ua
        return client.request(method, url, headers=headers).status_code


async def send_campaign(w: World, names: tuple[str, ...]) -> tuple[int, dict[str, int]]:
    """A list of leads, a campaign to it sent through SMTP; (campaign id, copy per name)."""
    leads = {name: await w.lead(f"{name}@example.com") for name in names}
    lst = w.api.post("/api/v1/lists", json={"name": "Spring readers"}).json()
    added = w.api.post(f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [*leads.values()]})
    assert added.status_code == 200, added.text
    body = {"name": "Spring", "subject": "Spring offer", "html": HTML, "list_id": lst["id"]}
    campaign = w.api.post("/api/v1/campaigns", json=body).json()
    return campaign["id"], leads


async def delivered(box: Mailbox, names: tuple[str, ...]) -> dict[str, Copy]:
    await eventually(lambda: all(box.to(f"{n}@example.com") for n in names), what="the mail")
    return {n: Copy(box.to(f"{n}@example.com")[0]) for n in names}


def report(w: World, campaign_id: int) -> dict[str, Any]:
    return w.api.get(f"/api/v1/campaigns/{campaign_id}/report").json()  # type: ignore[no-any-return]


async def settled(w: World, campaign_id: int, check: Any) -> dict[str, Any]:
    """The report once `check(report)` holds, then unchanged for a second."""
    await eventually(lambda: check(report(w, campaign_id)), timeout=20, what="the report")
    await asyncio.sleep(1.0)
    return report(w, campaign_id)


async def test_a_campaign_read_within_seconds_counts_every_person(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    campaign_id, leads = await send_campaign(w, READERS)
    w.rule(
        name="Hot lead",
        trigger={"type": "clicked", "campaign_id": campaign_id, "url_contains": "pricing"},
        actions=[{"type": "add_score", "points": 10}],
    )
    w.rule(
        name="Nudge",
        trigger={"type": "not_opened", "campaign_id": campaign_id, "within_seconds": 12},
        actions=[{"type": "send_email", "subject": "Did you see this?", "html": "<p>ping</p>"}],
    )
    sent = w.api.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert sent.status_code == 202, sent.text
    mail = await delivered(box, READERS)

    # Alice opens in Outlook at the office and clicks the pricing link a second later.
    assert fetch(mail["alice"].pixel, "81.2.69.160", OUTLOOK) == 200
    assert fetch(mail["alice"].links["Pricing"], "81.2.69.161", CHROME) == 302
    # Bob's Outlook blocks images: no pixel, he clicks the pricing link at once.
    assert fetch(mail["bob"].links["Pricing"], "86.150.2.2", EDGE) == 302
    # Carol's company scans mail from a cloud: pixel and every link within a second.
    assert fetch(mail["carol"].pixel, "20.42.1.1", CHROME) == 200
    for label in ("Pricing", "Docs", "Blog"):
        assert fetch(mail["carol"].links[label], "20.42.1.1", CHROME) == 302
    # At the same time a sandbox behind a home-like address follows the hidden honeypot
    # and the pricing link of Dave's copy.
    assert fetch(mail["dave"].honeypot, "92.40.11.3", CHROME) == 200
    assert fetch(mail["dave"].links["Pricing"], "92.40.11.3", CHROME) == 302
    # A link checker HEADs Erin's pixel: nothing was read.
    assert fetch(mail["erin"].pixel, "81.2.69.50", CHROME, method="HEAD") == 200
    # Frank does nothing.

    numbers = await settled(w, campaign_id, lambda r: r["bot_clicks"] == 5)
    assert {k: numbers[k] for k in EXPECTED} == EXPECTED

    # The hot leads are scored; the machines' leads are not.
    scores = {name: w.score(lead) for name, lead in leads.items()}
    assert scores == {"alice": 10, "bob": 10, "carol": 0, "dave": 0, "erin": 0, "frank": 0}

    # Reminders go exactly to those no person opened: the machines' and the silent ones.
    reminded = {f"{n}@example.com" for n in ("carol", "dave", "erin", "frank")}

    def reminders() -> list[str]:
        return sorted(m["To"] for m in box.received if m["Subject"] == "Did you see this?")

    await eventually(lambda: len(reminders()) >= len(reminded), timeout=30, what="reminders")
    await asyncio.sleep(1.5)
    assert reminders() == sorted(reminded)

    # What each lead's events say, and why.
    alice = events_of(w, leads["alice"])
    assert [(e["type"], e["verdict"], e["inferred"]) for e in alice] == [
        ("open", "human", False),
        ("click", "human", False),
    ]
    assert alice[1]["reason"] == (
        "Chrome click from the address on Windows that opened this message as a person"
    )
    bob = events_of(w, leads["bob"])
    assert [(e["type"], e["verdict"], e["inferred"]) for e in bob] == [
        ("open", "human", True),
        ("click", "human", False),
    ]
    assert "which alone proves nothing" in bob[1]["reason"]
    carol = events_of(w, leads["carol"])
    assert [(e["type"], e["verdict"]) for e in carol] == [("open", "scanner")] + [
        ("click", "scanner")
    ] * 3
    dave = events_of(w, leads["dave"])
    assert [(e["type"], e["verdict"]) for e in dave] == [("click", "bot"), ("click", "bot")]
    assert events_of(w, leads["erin"]) == []


EXPECTED = {
    "sent": 6,
    "opens_total": 3,  # alice's, bob's inferred one, the scanner's
    "opens_unique": 3,
    "human_opens_unique": 2,  # alice, and bob through his click
    "machine_opens": 1,  # the scanner's; the HEAD is no open at all
    "inferred_opens": 1,
    "clicks_total": 2,
    "clicks_unique": 2,
    "bot_clicks": 5,  # carol's three, dave's honeypot and pricing
    "unsubscribes": 0,
    "open_rate": 2 / 6,
    "click_rate": 2 / 6,
    "click_to_open_rate": 1.0,
}


def events_of(w: World, lead_id: int) -> list[dict[str, Any]]:
    """The lead's campaign events, oldest first (activity is newest first)."""
    rows = w.api.get(f"/api/v1/leads/{lead_id}/activity").json()
    return [e for e in reversed(rows) if e["type"] in ("open", "click")]


async def test_a_head_probe_changes_nothing(world: Stage, smtp: tuple[Mailbox, str]) -> None:
    w, _ = world
    box = smtp[0]
    campaign_id, leads = await send_campaign(w, ("gwen", "hal"))
    assert w.api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    mail = await delivered(box, ("gwen", "hal"))
    assert fetch(mail["gwen"].pixel, "81.2.69.160", OUTLOOK) == 200
    before = await settled(w, campaign_id, lambda r: r["human_opens_unique"] == 1)
    for name, ip in (("gwen", "81.2.69.160"), ("hal", "104.47.30.1"), ("hal", "81.2.69.9")):
        assert fetch(mail[name].pixel, ip, CHROME, method="HEAD") == 200
    await asyncio.sleep(2.5)  # an event would be in the API within 2 s
    assert report(w, campaign_id) == before
    assert [e["type"] for e in events_of(w, leads["gwen"])] == ["open"]
    assert events_of(w, leads["hal"]) == []


async def test_a_one_click_unsubscribe_from_a_cloud_fires_the_rule(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    box = smtp[0]
    campaign_id, leads = await send_campaign(w, ("ivy",))
    rule = w.rule(
        name="Goodbye",
        trigger={"type": "unsubscribed", "campaign_id": campaign_id},
        actions=[{"type": "add_score", "points": -5}],
    )
    assert w.api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    mail = await delivered(box, ("ivy",))
    # The mailbox provider's servers POST RFC 8058's one-click body, with no user agent.
    with httpx.Client(timeout=10) as client:
        del client.headers["user-agent"]
        answer = client.post(
            mail["ivy"].unsubscribe,
            content=b"List-Unsubscribe=One-Click",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-forwarded-for": "20.42.1.1",
            },
        )
    assert answer.status_code == 200
    await eventually(lambda: len(w.runs(rule["id"])) == 1, what="the unsubscribed rule")
    await eventually(lambda: w.score(leads["ivy"]) == -5, what="the score")
    rows = w.api.get(f"/api/v1/leads/{leads['ivy']}/activity").json()
    unsub = [e for e in rows if e["type"] == "unsubscribe"]
    assert [(e["verdict"], e["country"], e["device"]) for e in unsub] == [("human", None, None)]
    assert unsub[0]["reason"].startswith("unsubscribe authorised by its signed token")
    numbers = await settled(w, campaign_id, lambda r: r["unsubscribes"] == 1)
    assert (numbers["unsubscribes"], numbers["human_opens_unique"]) == (1, 0)
