"""The MIME message: text and HTML alternatives under our headers, DKIM-signed when a
key is configured.

Bodies are quoted-printable so no line passes SMTP's 998-byte limit whatever the HTML
looks like. The bytes from `as_bytes()` are the bytes to send: DKIM signs exactly them.
"""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import dkim

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


def as_bytes(msg: EmailMessage) -> bytes:
    """The wire form (CRLF line ends) of a message."""
    return msg.as_bytes(policy=policy.SMTP)


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
    msg = EmailMessage(policy=policy.SMTP)
    for name, value in message.headers.items():
        msg[name] = value
    msg.set_content(message.text, cte="quoted-printable")
    msg.add_alternative(message.html, subtype="html", cte="quoted-printable")
    if not dkim_configured(settings):
        return msg
    raw = as_bytes(msg)
    # Re-parse the signed bytes so the message object serialises to exactly them.
    signed = email.message_from_bytes(dkim_sign(raw, settings) + raw, policy=policy.SMTP)
    assert isinstance(signed, EmailMessage)
    return signed


def sent_headers(msg: EmailMessage) -> dict[str, str]:
    """The top-level headers as they go out, for the stored message and the API."""
    return {name: str(value) for name, value in msg.items()}
