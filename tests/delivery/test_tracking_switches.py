"""Tracking switched off: a campaign's "Track opens" / "Track clicks", and a lead who is
not tracked at all (`leads.tracking`), whatever the campaign asks.

Sent through real SMTP: with opens off the mail has no pixel; with clicks off its links
go straight to their destination and it has no honeypot; unsubscribing works either way.
"""

from __future__ import annotations

import email
from email import policy
from typing import Any

import pytest

from mailbeacon.delivery import Outbox, send_campaign
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.tokens import Signer


def _html(raw: bytes) -> str:
    mail = email.message_from_bytes(raw, policy=policy.default)
    return mail.get_body(("html",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("off", "pixel", "tracked_links"),
    [
        ((), True, True),
        (("opens",), False, True),
        (("clicks",), True, False),
        (("opens", "clicks"), False, False),
    ],
)
async def test_switches_decide_what_the_sent_mail_tracks(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
    off: tuple[str, ...],
    pixel: bool,
    tracked_links: bool,
) -> None:
    ann = await make_lead("ann@example.com", first_name="Ann")
    switches = {f"track_{k}": False for k in off}
    campaign_id = await make_campaign([ann], tags=["news"], **switches)
    settings = settings.with_(smtp_url=outbox.url)
    await send_campaign(db, settings, signer, company_id, campaign_id, None)

    [sent] = outbox.messages()
    html = _html(sent.read_bytes())
    base = settings.base_url
    assert (f"{base}/o/" in html) is pixel
    assert (f"{base}/c/" in html) is tracked_links
    assert ('href="https://shop.example/sale"' in html) is not tracked_links
    # The unsubscribe link and headers stay whatever is tracked.
    assert f"{base}/u/" in html
    mail = email.message_from_bytes(sent.read_bytes(), policy=policy.default)
    assert mail["List-Unsubscribe"].startswith(f"<{base}/u/")


@pytest.mark.parametrize("campaign_tracks", [True, False])
async def test_a_lead_not_tracked_gets_no_pixel_and_no_tracked_link(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
    campaign_tracks: bool,
) -> None:
    ann = await make_lead("ann@example.com", first_name="Ann")
    bob = await make_lead("bob@example.com", first_name="Bob", tracking=False)
    switches = {} if campaign_tracks else {"track_clicks": False}
    campaign_id = await make_campaign([ann, bob], **switches)
    settings = settings.with_(smtp_url=outbox.url)
    await send_campaign(db, settings, signer, company_id, campaign_id, None)

    by_rcpt = {}
    for path in outbox.messages():
        mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        by_rcpt[str(mail["To"])] = (mail, _html(path.read_bytes()))
    base = settings.base_url
    [bob_mail, bob_html] = next(v for k, v in by_rcpt.items() if "bob@" in k)
    [_, ann_html] = next(v for k, v in by_rcpt.items() if "ann@" in k)
    assert f"{base}/o/" not in bob_html and f"{base}/c/" not in bob_html
    assert 'href="https://shop.example/sale"' in bob_html
    assert f"{base}/u/" in bob_html
    assert bob_mail["List-Unsubscribe"].startswith(f"<{base}/u/")
    assert f"{base}/o/" in ann_html
    assert (f"{base}/c/" in ann_html) is campaign_tracks
