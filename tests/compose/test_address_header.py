"""A lead's name in `To:` is one display name, never more recipients: quoted or RFC 2047
encoded, folded by us, whatever it holds (commas, quotes, angle brackets, `@`, line
breaks, non-ASCII, hundreds of characters)."""

from __future__ import annotations

import email
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses

from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from mailbeacon.compose.headers import address_header, message_headers, one_line
from mailbeacon.compose.mime import as_bytes, set_headers
from mailbeacon.compose.model import Recipient
from mailbeacon.settings import Settings

ADDR = "eve@example.com"
HOSTILE = [
    "Eve, attacker@evil.example, and a long display name",
    "Eve, attacker@evil.example, and a long display name that folds, bob@evil.example",
    'Eve "the boss" <boss@evil.example>, mallory@evil.example',
    "Zoë Ünder-Straße, ok@evil.example, 東京 " + "ü" * 120,
    "x" * 300,
    "Eve\r\nBcc: attacker@evil.example",
]


def wire(name: str) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    set_headers(msg, {"To": address_header(name, ADDR), "Subject": "hi"})
    msg.set_content("body")
    return as_bytes(msg)


def received(raw: bytes) -> tuple[list[tuple[str, str]], list[bytes]]:
    """What a receiver parses out of `To:` (RFC 2047 decoded), and the header's lines."""
    head = raw.split(b"\r\nSubject:")[0]
    parsed = email.message_from_bytes(raw)  # compat32: the raw header, as MTAs see it
    pairs = getaddresses(parsed.get_all("To", []))
    decoded = [(str(make_header(decode_header(name))), addr) for name, addr in pairs]
    return decoded, head.split(b"\r\n")


def test_the_probe_name_is_one_quoted_recipient() -> None:
    raw = wire(HOSTILE[0])
    assert raw.startswith(
        b'To: "Eve, attacker@evil.example, and a long display name" <eve@example.com>\r\n'
    )


def test_hostile_names_stay_one_address_on_short_lines() -> None:
    for name in HOSTILE:
        pairs, lines = received(wire(name))
        assert pairs == [(one_line(name), ADDR)], name
        assert all(len(line) <= 78 for line in lines), lines
        modern = email.message_from_bytes(wire(name), policy=policy.default)
        assert [a.addr_spec for a in modern["To"].addresses] == [ADDR]


def test_a_line_break_in_a_name_becomes_a_space() -> None:
    raw = wire("Eve\r\nBcc: attacker@evil.example")
    assert b"\r\nBcc:" not in raw
    assert received(raw)[0] == [("Eve Bcc: attacker@evil.example", ADDR)]


@examples(max_examples=300, deadline=None)
@given(st.text(max_size=400).filter(lambda s: "=?" not in s))
def test_any_name_round_trips_as_one_address(name: str) -> None:
    pairs, lines = received(wire(name))
    assert len(pairs) == 1 and pairs[0][1] == ADDR
    assert pairs[0][0].split() == one_line(name).split()
    assert all(len(line) <= 78 and line.isascii() for line in lines)


def test_a_line_break_in_a_merged_subject_adds_no_header(settings: Settings) -> None:
    eve = Recipient(id=1, email=ADDR, first_name="Eve, a@evil.example")
    headers = message_headers(
        settings=settings,
        message_id=7,
        recipient=eve,
        subject="Hi Eve\r\nBcc: attacker@evil.example",
        unsubscribe_url="https://t.example.com/u/x",
    )
    msg = EmailMessage(policy=policy.SMTP)
    set_headers(msg, headers)
    msg.set_content("body")
    parsed = email.message_from_bytes(as_bytes(msg))
    assert parsed["Subject"] == "Hi Eve Bcc: attacker@evil.example" and parsed["Bcc"] is None
    assert getaddresses(parsed.get_all("To", [])) == [("Eve, a@evil.example", ADDR)]
    assert parsed["From"] == "mailbeacon <no-reply@mailbeacon.localhost>"
