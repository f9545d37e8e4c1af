"""The MIME message: text and HTML alternatives under our headers, DKIM-signed when a
key is configured.

Bodies are quoted-printable so no line passes SMTP's 998-byte limit whatever the HTML
looks like. The bytes from `as_bytes()` are the bytes to send: DKIM signs exactly them.
"""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

import dkim

from mailbeacon.compose.headers import ADDRESS_HEADERS
from mailbeacon.compose.model import Instrumented
from mailbeacon.settings import Settings

# What DKIM vouches for: changing any of these after signing breaks the signature.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


# SMTP (CRLF), and a header that arrived already folded is written exactly as it is:
# address headers folded by compose.headers, and every header of a DKIM-signed message
# (re-folding them would change the bytes the signature vouches for).
WIRE = policy.SMTP.clone(refold_source="none")


def as_bytes(msg: EmailMessage) -> bytes:
    """The wire form (CRLF line ends) of a message."""
    return msg.as_bytes(policy=WIRE)


def set_headers(msg: EmailMessage, headers: dict[str, str]) -> None:
    """Add `headers` in order; address headers as compose.headers folded them (the email
    package's folding can lose a display name's quotes, see `address_header`)."""
    for name, value in headers.items():
        if name in ADDRESS_HEADERS:
            if not value.isascii() or "\r" in value:
                raise ValueError(f"{name} header not built by compose.headers: {value!r}")
            msg.set_raw(name, value)
        else:
            msg[name] = value


def dkim_configured(settings: Settings) -> bool:
    return bool(settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key_path)


def dkim_sign(raw: bytes, settings: Settings) -> bytes:
    """The `DKIM-Signature:` header line for `raw` (relaxed/simple canonicalisation)."""
    assert settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key_path
    return dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        settings.dkim_domain.encode(),
        Path(settings.dkim_private_key_path).read_bytes(),
        include_headers=list(SIGNED_HEADERS),
    )


def build_mime(message: Instrumented, settings: Settings) -> EmailMessage:
    """The message to send: multipart/alternative, signed when settings carry a key."""
    msg = EmailMessage(policy=WIRE)
    set_headers(msg, message.headers)
    msg.set_content(message.text, cte="quoted-printable")
    msg.add_alternative(message.html, subtype="html", cte="quoted-printable")
    if not dkim_configured(settings):
        return msg
    raw = as_bytes(msg)
    # Re-parse the signed bytes so the message object serialises to exactly them.
    signed = email.message_from_bytes(dkim_sign(raw, settings) + raw, policy=WIRE)
    assert isinstance(signed, EmailMessage)
    return signed


def readable_addresses(raw: str) -> str:
    """An address header as sent, decoded for people: `"Eve, Smith" <eve@x.example>`.

    Decoded with the legacy decoder, which joins adjacent RFC 2047 words as the RFC says
    (the modern parser puts a space between them, splitting a long name mid-word)."""
    pairs = getaddresses(["".join(raw.splitlines())])
    return ", ".join(
        str(Address(display_name=str(make_header(decode_header(name))), addr_spec=addr))
        for name, addr in pairs
    )


def sent_headers(msg: EmailMessage) -> dict[str, str]:
    """The top-level headers as they go out, for the stored message and the API."""
    return {
        name: readable_addresses(raw) if name in ADDRESS_HEADERS else str(msg[name])
        for name, raw in msg.raw_items()
    }
