"""A campaign as one lead would get it (preview), and a test copy to any address.

Neither stores a message, and neither can ever record anything: both are composed by
the very code a send uses (`compose.instrument`, the campaign's options), but with
message id 0 and signed by a throwaway key made for the one call, which no edge knows.
So the pixel and the tracked links look exactly as they will, yet a hit on them is a
forged token to the edge: the pixel still answers its image (as for any token) and
records nothing; a tracked link, an unsubscribe or forward link answers 404.

A test copy goes to a person who will click its links, so there they lead straight to
their destinations (with the campaign's UTM tags, as a tracked click would land); its
pixel stays, inert, so the copy is the size and shape of the real mail. Its subject
starts with "[Test]", and nothing of it is counted anywhere: no lead, no message row,
no event.
"""

from __future__ import annotations

import html as html_lib
import secrets
from dataclasses import replace
from email.utils import parseaddr
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.compose import GMAIL_CLIP_BYTES, Instrumented, Recipient, as_bytes, build_mime
from mailbeacon.compose import instrument as compose
from mailbeacon.delivery.messages import (
    campaign_options,
    load_campaign,
    load_recipient,
    with_engagement,
)
from mailbeacon.delivery.smtp import SmtpTransport, Transport
from mailbeacon.settings import Settings
from mailbeacon.tokens import Kind, Signer, Token

PREVIEW_KID = "preview"
TEST_KID = "test"
TEST_PREFIX = "[Test] "
PREVIEW_MESSAGE_ID = 0


def inert_signer(kid: str) -> Signer:
    """A signer whose key exists for this call only: its tokens verify nowhere."""
    return Signer([(kid, secrets.token_bytes(32))])


def size_warnings(html: str) -> list[str]:
    """Gmail clips any message whose HTML passes 102 KB, wherever the pixel is."""
    size = len(html.encode("utf-8"))
    if size <= GMAIL_CLIP_BYTES:
        return []
    return [
        f"The HTML is {size:,} bytes ({size / 1024:.0f} KB), over Gmail's 102 KB "
        f"({GMAIL_CLIP_BYTES:,}-byte) clipping limit: Gmail shows the start of the email "
        "and a 'View entire message' link for the rest."
    ]


def _compose(row: Any, recipient: Recipient, settings: Settings, signer: Signer) -> Instrumented:
    """The campaign for `recipient` exactly as a send composes it (ValueError: template)."""
    return compose(
        subject=row.subject,
        html=row.html,
        text=row.text,
        recipient=recipient,
        message_id=PREVIEW_MESSAGE_ID,
        company_id=row.company_id,
        signer=signer,
        settings=settings,
        options=campaign_options(row),
    )


async def preview(
    conn: AsyncConnection, settings: Settings, company_id: int, campaign_id: int, lead_id: int
) -> dict[str, Any]:
    """`{"subject", "html", "text", "warnings", "links"}` as the lead would get it.

    Raises CampaignNotFound / LeadNotFound (404), Suppressed (409: they get no mail),
    ValueError for a broken template (422)."""
    row = await load_campaign(conn, company_id, campaign_id)
    recipient = await load_recipient(conn, company_id, lead_id)
    templates = [row.subject, row.html, row.text]
    recipient = await with_engagement(conn, company_id, recipient, templates)
    inst = _compose(row, recipient, settings, inert_signer(PREVIEW_KID))
    return {
        "campaign_id": campaign_id,
        "lead_id": lead_id,
        "subject": inst.subject,
        "html": inst.html,
        "text": inst.text,
        "warnings": [*inst.warnings, *size_warnings(inst.html)],
        "links": [{"index": k.index, "url": k.url, "kind": k.kind} for k in inst.links],
        "size": len(inst.html.encode("utf-8")),
    }


def untracked(
    inst: Instrumented, settings: Settings, signer: Signer, company_id: int
) -> Instrumented:
    """The same message with each tracked link replaced by its destination."""
    base = settings.base_url.rstrip("/")
    html, text = inst.html, inst.text
    for link in inst.links:
        if link.kind != "link":
            continue
        token = signer.sign(Token(Kind.CLICK, company_id, PREVIEW_MESSAGE_ID, 0, link.index))
        tracked = f"{base}/c/{token}"
        html = html.replace(tracked, html_lib.escape(link.url, quote=True))
        text = text.replace(tracked, link.url)
    return replace(inst, html=html, text=text)


async def send_test(
    conn: AsyncConnection,
    settings: Settings,
    company_id: int,
    campaign_id: int,
    email: str,
    *,
    lead_id: int | None = None,
    transport: Transport | None = None,
) -> dict[str, Any]:
    """Send one test copy of the campaign to `email` through the configured SMTP server,
    merge fields filled from `lead_id` when given (else only `email`).

    Raises CampaignNotFound / LeadNotFound (404), Suppressed (409), ValueError for a
    broken template (422), and the transport's DeliveryError when the server refuses."""
    row = await load_campaign(conn, company_id, campaign_id)
    if lead_id is None:
        recipient = Recipient(0, email)
    else:
        # Blocks by engagement as that lead would see them.
        lead = await load_recipient(conn, company_id, lead_id)
        lead = await with_engagement(conn, company_id, lead, [row.subject, row.html, row.text])
        recipient = replace(lead, id=0, email=email)
    signer = inert_signer(TEST_KID)
    inst = untracked(_compose(row, recipient, settings, signer), settings, signer, company_id)
    subject = TEST_PREFIX + inst.subject
    inst = replace(inst, subject=subject, headers={**inst.headers, "Subject": subject})
    mime = build_mime(inst, settings)
    await (transport or SmtpTransport(settings)).send(
        parseaddr(settings.mail_from)[1], [email], as_bytes(mime)
    )
    return {
        "campaign_id": campaign_id,
        "email": email,
        "subject": subject,
        "status": "sent",
        "warnings": [*inst.warnings, *size_warnings(inst.html)],
    }
