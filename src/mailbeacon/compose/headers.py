"""The envelope headers of a tracked message: who, what, when, and how to unsubscribe.

`List-Unsubscribe` with `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058)
is what gives Gmail and Yahoo their "Unsubscribe" button; bulk senders are required to
have it. The https URL comes first; a mailto is offered too when one is configured.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from mailbeacon.compose.model import Recipient
from mailbeacon.settings import Settings

ONE_CLICK = "List-Unsubscribe=One-Click"
# Headers whose values compose builds already folded (see `address_header`); mime
# writes them as they are instead of letting the email package fold them again.
ADDRESS_HEADERS = frozenset({"From", "To", "Cc", "Reply-To", "Sender"})
LINE = 78  # RFC 5322's recommended line length, the email package's default
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")
_MESSAGE_ID = re.compile(r"<mb\.(\d{1,18})\.[0-9a-f]+@[^<>\s]+>")
_NOTIFICATION_ID = re.compile(r"<mb\.notify\.(\d{1,18})\.[0-9a-f]+@[^<>\s]+>")


def one_line(value: str) -> str:
    """`value` with every run of control characters (CR, LF, tab...) made one space: for
    text from users that goes into a header (a rule's name in a subject)."""
    return _CONTROLS.sub(" ", value).strip()


def address_header(display_name: str | None, addr_spec: str, *, header: str = "To") -> str:
    """One address as a header value that is safe to write as it is: pure ASCII, folded
    into lines of at most 78 characters, the display name quoted or encoded so that a
    receiver parses exactly one address whatever the name holds (commas, quotes, angle
    brackets, `@`, non-ASCII, any length).

    Why not the email package's own folding: on Python 3.11 and 3.12 it drops the quotes
    of a long ASCII display name when it folds the line, so `Eve, a@b.example, ...`
    becomes three recipients. A name that fits on the line is quoted (formataddr); any
    other is RFC 2047 encoded words, which carry commas and quotes encoded.
    """
    if _CONTROLS.search(addr_spec) or not addr_spec.isascii():
        raise ValueError(f"not a plain address: {addr_spec!r}")
    name = one_line(display_name or "")
    if not name:
        return addr_spec
    if name.isascii():
        quoted = formataddr((name, addr_spec))
        if len(header) + 2 + len(quoted) <= LINE:
            return quoted
    words = Header(name, "utf-8", maxlinelen=LINE, header_name=header).encode(linesep="\n")
    last = words.rpartition("\n")[2]
    indent = len(header) + 2 if "\n" not in words else 0
    glue = " " if indent + len(last) + 3 + len(addr_spec) <= LINE else "\n "
    return f"{words}{glue}<{addr_spec}>"


def configured_address(value: str, *, header: str = "From") -> str:
    """A configured `Name <address>` (MAILBEACON_MAIL_FROM) as a safe header value."""
    name, addr = parseaddr(value)
    return address_header(name, addr or value, header=header)


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


def notification_id_header(company_id: int, domain: str) -> str:
    """The Message-ID of a mail to one of our users (a rule's notify_owner): it names
    the company, so the local outbox shows it to that company alone."""
    return f"<mb.notify.{company_id}.{secrets.token_hex(6)}@{domain}>"


def message_id_of(header: str) -> int | None:
    """Our message id in a `Message-ID` written by `message_id_header`, else None."""
    found = _MESSAGE_ID.fullmatch(header.strip())
    return int(found.group(1)) if found else None


def notification_company_of(header: str) -> int | None:
    """The company in a `Message-ID` written by `notification_id_header`, else None."""
    found = _NOTIFICATION_ID.fullmatch(header.strip())
    return int(found.group(1)) if found else None


def recipient_address(recipient: Recipient) -> str:
    name = " ".join(p for p in (recipient.first_name, recipient.last_name) if p)
    return address_header(name, recipient.email, header="To")


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
        "From": configured_address(settings.mail_from),
        "To": recipient_address(recipient),
        # A merged subject may hold a lead's text: a line break must not start a header.
        "Subject": _CONTROLS.sub(" ", subject),
        "Date": format_datetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC)),
        "Message-ID": message_id_header(message_id, sender_domain(settings.mail_from)),
        "List-Unsubscribe": list_unsubscribe(unsubscribe_url, settings.unsubscribe_mailto),
        "List-Unsubscribe-Post": ONE_CLICK,
    }
