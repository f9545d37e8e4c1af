"""The envelope headers of a tracked message: who, what, when, and how to unsubscribe.

`List-Unsubscribe` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058)
is what gives Gmail and Yahoo their "Unsubscribe" button; bulk senders are required to
have it. The https URL comes first; a mailto is offered too when one is configured.
"""

from __future__ import annotations

import datetime as dt
import secrets
from email.utils import format_datetime, formataddr, parseaddr

from mailbeacon.compose.model import Recipient
from mailbeacon.settings import Settings

ONE_CLICK = "List-Unsubscribe=One-Click"


def sender_domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "mailbeacon.localhost"


def list_unsubscribe(unsubscribe_url: str, mailto: str | None) -> str:
    targets = [unsubscribe_url]
    if mailto:
        targets.append(mailto if mailto.startswith("mailto:") else f"mailto:{mailto}")
    return ", ".join(f"<{t}>" for t in targets)


def message_id_header(message_id: int, domain: str) -> str:
    # Our id makes replies and bounces traceable; the random part keeps it unique
    # across installations sharing a sending domain.
    return f"<mb.{message_id}.{secrets.token_hex(6)}@{domain}>"


def recipient_address(recipient: Recipient) -> str:
    name = " ".join(p for p in (recipient.first_name, recipient.last_name) if p)
    return formataddr((name, recipient.email)) if name else recipient.email


def message_headers(
    *,
    settings: Settings,
    message_id: int,
    recipient: Recipient,
    subject: str,
    unsubscribe_url: str,
    date: dt.datetime | None = None,
) -> dict[str, str]:
    """The headers of one message, in the order they are written."""
    when = date or dt.datetime.now(dt.UTC)
    return {
        "From": settings.mail_from,
        "To": recipient_address(recipient),
        "Subject": subject,
        "Date": format_datetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC)),
        "Message-ID": message_id_header(message_id, sender_domain(settings.mail_from)),
        "List-Unsubscribe": list_unsubscribe(unsubscribe_url, settings.unsubscribe_mailto),
        "List-Unsubscribe-Post": ONE_CLICK,
    }
