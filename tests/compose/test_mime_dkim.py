"""The MIME message: two alternatives under our headers, and a DKIM signature that
verifies against the published key."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest

from mailbeacon.compose import as_bytes, build_mime, sent_headers
from mailbeacon.compose.dkim_keys import generate_key
from mailbeacon.settings import Settings

HTML = "<p>Hello {{first_name}} \u00e9t\u00e9 <a href='https://shop.example/'>shop</a></p>" + (
    "<span>long line without breaks</span>" * 200
)


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    path = tmp_path_factory.mktemp("dkim") / "key.pem"
    return path, generate_key(path).encode()


def reparse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_unsigned_message_has_both_parts(compose: Any, settings: Settings) -> None:
    inst = compose(HTML)
    raw = as_bytes(build_mime(inst, settings))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78  # quoted-printable
    msg = reparse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    html, text = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html is not None and text is not None
    # What was composed is what is sent (MIME ends every part with a line break).
    assert html.get_content().replace("\r\n", "\n").rstrip("\n") == inst.html
    assert text.get_content().replace("\r\n", "\n") == inst.text
    assert "DKIM-Signature" not in msg
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert msg[name] == inst.headers[name]


def test_dkim_signature_verifies(compose: Any, settings: Settings, key: tuple[Path, bytes]) -> None:
    path, txt = key
    signed_settings = settings.with_(
        dkim_selector="mb", dkim_domain="mailbeacon.localhost", dkim_private_key_path=str(path)
    )
    mime = build_mime(compose(HTML), signed_settings)
    raw = as_bytes(mime)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mb._domainkey.mailbeacon.localhost."
        return txt

    assert dkim.verify(raw, dnsfunc=dns)
    assert "DKIM-Signature" in sent_headers(mime)
    # Changing the body after signing is caught.
    assert not dkim.verify(raw.replace(b"shop", b"SHOP"), dnsfunc=dns)
