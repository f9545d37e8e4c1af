"""A real SMTP round trip: create_message -> aiosmtplib -> the local outbox -> a .eml
that carries the pixel, tracked links, unsubscribe headers, a text part and DKIM."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import sqlalchemy as sa

from mailbeacon.delivery import Outbox, create_message
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import message_links, messages
from mailbeacon.tokens import Kind, Signer

HTML = """<html><head><style>p { color: #333 }</style></head><body>
<p>Hello {{first_name}}, see <a href="https://example.com/pricing?plan=pro">pricing</a>
or <a href="mailto:sales@example.com">write to us</a>.</p>
<!--[if mso]><v:roundrect href="https://example.com/pricing?plan=pro"><![endif]-->
</body></html>"""


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def part(msg: EmailMessage, subtype: str) -> str:
    found = msg.get_body(preferencelist=(subtype,))
    assert found is not None, f"no text/{subtype} part"
    return str(found.get_content())


async def test_mail_arrives_tracked(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    company_id: int,
    dkim_key: tuple[Path, bytes],
) -> None:
    key_path, txt = dkim_key
    settings = settings.with_(
        smtp_url=outbox.url,
        unsubscribe_mailto="unsubscribe@mailbeacon.localhost",
        dkim_selector="mb",
        dkim_domain="mailbeacon.localhost",
        dkim_private_key_path=str(key_path),
    )
    lead_id = await make_lead("ann@example.com", first_name="Ann")

    answer = await create_message(
        db,
        settings,
        signer,
        company_id=company_id,
        lead_id=lead_id,
        subject="Hi {{first_name}}",
        html=HTML,
    )

    assert answer["status"] == "sent", answer["error"]
    [path] = outbox.messages()
    raw = path.read_bytes()
    msg = parse(raw)
    assert msg["Subject"] == "Hi Ann"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsub = msg["List-Unsubscribe"]
    assert unsub.startswith(f"<{settings.base_url}/u/")
    assert "<mailto:unsubscribe@mailbeacon.localhost>" in unsub
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: txt)

    html, text = part(msg, "html"), part(msg, "plain")
    assert f'src="{settings.base_url}/o/' in html and 'width="1" height="1"' in html
    assert "https://example.com/pricing" not in html  # the VML button is tracked too
    assert html.count(f"{settings.base_url}/c/") == 3  # link, VML href, honeypot
    assert "mailto:sales@example.com" in html
    assert f"{settings.base_url}/c/" in text and "/o/" not in text
    assert "example.com/pricing" not in text

    # The stored message is what was sent, and each click token points at its link.
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(messages))).one()
        links = (await conn.execute(sa.select(message_links))).all()
    assert (row.status, row.html, row.text) == ("sent", answer["html"], answer["text"])
    assert row.headers["List-Unsubscribe"] == answer["headers"]["List-Unsubscribe"]
    assert "DKIM-Signature" in row.headers
    by_index = {link.link_index: link for link in links}
    token = signer.verify(html.split(f"{settings.base_url}/c/")[1].split('"')[0])
    assert token is not None and token.kind == Kind.CLICK and token.message_id == answer["id"]
    assert by_index[token.link_index].url == "https://example.com/pricing?plan=pro"


async def test_send_false_stores_without_sending(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    company_id: int,
) -> None:
    lead_id = await make_lead("bob@example.com")
    answer = await create_message(
        db,
        settings.with_(smtp_url=outbox.url),
        signer,
        company_id=company_id,
        lead_id=lead_id,
        subject="Hello",
        html="<p>hi</p>",
        send=False,
    )
    assert answer["status"] == "stored"
    assert outbox.messages() == []
    assert {link["kind"] for link in answer["links"]} == {"unsubscribe", "honeypot"}
