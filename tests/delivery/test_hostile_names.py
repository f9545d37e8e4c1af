"""Names that try to become recipients, sent through real SMTP (aiosmtpd): each mail
reaches exactly the lead (envelope and `To:`), and the name arrives as one display name.
Covers a message, a forward copy, and a rule's notify_owner mail."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from mailbeacon.automation.actions import Context, notify_owner
from mailbeacon.delivery import SmtpTransport, create_message, send_forward_copy
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import users
from mailbeacon.tokens import Signer

HOSTILE = [
    ("Eve, attacker@evil.example, and a long display name", "Smith, bob@evil.example"),
    ('Eve "the boss" <boss@evil.example>,', "mallory@evil.example"),
    ("Zoë, ok@evil.example, 東京", "Ünder-Straße " + "ü" * 90),
    ("x" * 200, None),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def insert(db: Database, table: Any, **values: Any) -> int:
    async with db.begin() as conn:
        result = await conn.execute(table.insert().values(**values))
        return int(result.inserted_primary_key[0])


@dataclass
class Capture:
    """Every mail the SMTP server got: its envelope recipients and the parsed bytes."""

    mails: list[tuple[list[str], Message]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(raw)))
        return "250 OK"


@pytest.fixture
def capture() -> Iterator[tuple[Capture, str]]:
    box = Capture()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


def to_header(mail: Message) -> list[tuple[str, str]]:
    """The `To:` as a receiver reads it: addresses, display names RFC 2047 decoded."""
    pairs = getaddresses(mail.get_all("To", []))
    return [(str(make_header(decode_header(name))), addr) for name, addr in pairs]


@pytest.mark.parametrize(("first", "last"), HOSTILE)
async def test_a_message_and_its_forward_copy_reach_only_the_lead(
    db: Database,
    settings: Settings,
    signer: Signer,
    capture: tuple[Capture, str],
    make_lead: Any,
    company_id: int,
    dkim_key: tuple[Path, bytes],
    first: str,
    last: str | None,
) -> None:
    box, url = capture
    key_path, _ = dkim_key
    settings = settings.with_(
        smtp_url=url,
        mail_from='"Acme, Sales" <sales@acme.example>',
        dkim_selector="mb",
        dkim_domain="acme.example",
        dkim_private_key_path=str(key_path),
    )
    lead = await make_lead("eve@example.com", first_name=first, last_name=last)
    friend = await make_lead("friend@example.com", first_name=last or first, last_name=first)
    sent = await create_message(
        db, settings, signer, company_id=company_id, lead_id=lead, subject="Hi", html="<p>Hi</p>"
    )
    copy = await send_forward_copy(
        db, settings, signer, company_id=company_id, message_id=sent["id"], friend_lead_id=friend
    )
    assert sent["status"] == "sent" and copy is not None and copy["status"] == "sent"

    name = " ".join(p for p in (first, last) if p)
    friend_name = " ".join(p for p in (last or first, first) if p)
    (rcpt, mail), (friend_rcpt, friend_mail) = box.mails
    assert rcpt == ["eve@example.com"] and friend_rcpt == ["friend@example.com"]
    assert to_header(mail) == [(name, "eve@example.com")]
    assert to_header(friend_mail) == [(friend_name, "friend@example.com")]
    assert getaddresses(mail.get_all("From", [])) == [("Acme, Sales", "sales@acme.example")]
    # What the API answers as sent parses the same way.
    assert getaddresses([sent["headers"]["To"]]) == [(name, "eve@example.com")]


async def test_notify_owner_with_a_line_break_in_the_rule_name(
    db: Database,
    settings: Settings,
    signer: Signer,
    capture: tuple[Capture, str],
    make_lead: Any,
    company_id: int,
) -> None:
    box, url = capture
    settings = settings.with_(smtp_url=url)
    owner = await insert(
        db, users, company_id=company_id, email="owner@acme.example", role="salesperson",
        active=True, created_at=now(),
    )  # fmt: skip
    first, last = HOSTILE[0]
    lead = await make_lead("eve@example.com", first_name=first, last_name=last, owner_user_id=owner)
    job = {
        "company_id": company_id,
        "lead_id": lead,
        "rule_name": "Deal\r\nBcc: attacker@evil.example",
        "trigger": {"type": "click\nX-Evil: 1", "url": "https://acme.example/pricing"},
        "action": {"type": "notify_owner"},
    }
    async with httpx.AsyncClient() as http:
        ctx = Context(db, settings, signer, SmtpTransport(settings, attempts=1), http)
        outcome = await notify_owner(ctx, job)
    assert outcome.status == "done", outcome.result

    [(rcpt, mail)] = box.mails
    assert rcpt == ["owner@acme.example"]
    assert getaddresses(mail.get_all("To", [])) == [("", "owner@acme.example")]
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    subject = str(make_header(decode_header(mail["Subject"].replace("\r\n", ""))))
    assert subject == (
        f"{first} {last} triggered 'Deal Bcc: attacker@evil.example' (click X-Evil: 1)"
    )
    assert mail["Message-ID"].startswith(f"<mb.notify.{company_id}.")
