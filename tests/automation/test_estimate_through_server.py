"""The estimated true open rate of a real campaign with a known truth (issue 16).

A campaign goes out through SMTP to 56 leads and is read through the real edge, judged by
the real enrich stage and rolled up by the real pipeline. Who truly opened is known:
- 20 readers whose opens show (15 in Outlook, 5 through Gmail's image proxy), 6 of
  whom click: openers click 3 times in 10;
- 20 Apple Mail readers: Apple's proxy prefetches every pixel on delivery; 10 of them
  truly read it, and 3 of those click (the same 3 in 10);
- 10 readers with images off, 6 of whom read it and 2 click;
- 6 readers with images on who never open.
True open share: (20 + 10 + 6) / 56. What the pixel sees: 25 (20 visible, 5 through
their clicks), so `open_rate` stays 25 / 56 whatever the estimate says.

Addresses are faked with X-Forwarded-For from loopback (serve.py trusts it); Apple's
prefetches come from 17.0.0.0/8, Gmail's proxy from 66.102.0.0/20 (enrich/networks.py).
"""

from __future__ import annotations

from automation_harness import Mailbox, Server, World
from test_campaign_verdicts import CHROME, OUTLOOK, delivered, fetch, send_campaign, settled

Stage = tuple[World, Server]

GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
IPHONE_MAIL = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
OUTLOOKS = tuple(f"outlook{i}" for i in range(15))
GMAILS = tuple(f"gmail{i}" for i in range(5))
APPLES = tuple(f"apple{i}" for i in range(20))
BLOCKED = tuple(f"blocked{i}" for i in range(10))
SILENT = tuple(f"silent{i}" for i in range(6))
SENT = 56
TRUE_SHARE = (20 + 10 + 6) / SENT


def home(i: int) -> str:
    """A distinct residential-looking address per reader."""
    return f"86.{150 + i}.2.{2 + i}"


async def test_the_interval_holds_the_true_share_and_the_observed_rate_stays(
    world: Stage, smtp: tuple[Mailbox, str]
) -> None:
    w, _ = world
    names = OUTLOOKS + GMAILS + APPLES + BLOCKED + SILENT
    assert len(names) == SENT
    campaign_id, _ = await send_campaign(w, names)
    assert w.api.post(f"/api/v1/campaigns/{campaign_id}/send").status_code == 202
    mail = await delivered(smtp[0], names)

    for i, name in enumerate(OUTLOOKS):
        assert fetch(mail[name].pixel, home(i), OUTLOOK) == 200
        if i < 5:  # 5 of the 15 click, from the same address
            assert fetch(mail[name].links["Pricing"], home(i), CHROME) == 302
    for i, name in enumerate(GMAILS):
        assert fetch(mail[name].pixel, f"66.102.1.{10 + i}", GMAIL) == 200
        if i < 1:  # the sixth visible clicker, from their desktop
            assert fetch(mail[name].links["Pricing"], home(20 + i), CHROME) == 302
    for i, name in enumerate(APPLES):
        assert fetch(mail[name].pixel, f"17.58.63.{20 + i}", IPHONE_MAIL) == 200
        if i < 3:  # 3 of the 10 who read it click, in Safari on their phone
            assert fetch(mail[name].links["Pricing"], home(30 + i), IPHONE_SAFARI) == 302
    for i, name in enumerate(BLOCKED[:2]):  # 2 of the 6 readers with images off click
        assert fetch(mail[name].links["Pricing"], home(40 + i), CHROME) == 302

    report = await settled(
        w, campaign_id, lambda r: r["clicks_unique"] == 11 and r["machine_opens"] == 20
    )
    assert report["sent"] == SENT
    assert report["human_opens_unique"] == 25  # 20 visible, 3 Apple and 2 images-off clickers
    assert report["inferred_opens"] == 5
    assert report["open_rate"] == 25 / SENT  # the observed rate, exactly as it was
    assert report["privacy_protected"] == 17  # the Apple readers who did not click
    low, high = report["estimated_open_rate_interval"]
    assert 25 / SENT <= low < TRUE_SHARE < high <= 1
    assert low <= report["estimated_open_rate"] <= high
    assert abs(report["estimated_open_rate"] - TRUE_SHARE) < abs(report["open_rate"] - TRUE_SHARE)
    est = report["estimate"]
    assert est["click_propensity"] == 6 / 20
    assert est["assumption"] == "readers click as often whatever mail app they use"
    assert est["reliable"] is False  # 6 visible clickers: the page says it is a rough figure
    assert est["reason"].startswith("only 6 reader(s) with visible opens clicked")
