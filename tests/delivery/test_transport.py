"""SMTP settings parsing and the outbox on its own."""

from __future__ import annotations

import smtplib

import pytest

from mailbeacon.delivery import Outbox
from mailbeacon.delivery.smtp import Endpoint, PermanentFailure, endpoint
from mailbeacon.settings import Settings


@pytest.mark.parametrize(
    ("url", "user", "expected"),
    [
        ("smtp://127.0.0.1:8025", None, Endpoint("127.0.0.1", 8025, False, None, None)),
        ("smtp://mail.example.com", None, Endpoint("mail.example.com", 25, False, None, None)),
        ("smtps://mail.example.com", None, Endpoint("mail.example.com", 465, True, None, None)),
        ("smtp://u%40x:p%3Aw@h:587", None, Endpoint("h", 587, False, "u@x", "p:w")),
        ("smtp://u:p@h:587", "settings-user", Endpoint("h", 587, False, "settings-user", "p")),
    ],
)
def test_smtp_url(url: str, user: str | None, expected: Endpoint) -> None:
    assert endpoint(Settings(smtp_url=url, smtp_username=user)) == expected


@pytest.mark.parametrize("url", ["http://h:25", "smtp://", "127.0.0.1:25"])
def test_bad_smtp_url_names_the_variable(url: str) -> None:
    with pytest.raises(ValueError, match="MAILBEACON_SMTP_URL"):
        endpoint(Settings(smtp_url=url))


@pytest.mark.parametrize(
    ("reply", "bounced"),
    [("550 5.1.1 No such user", True), ("554 5.7.1 Spam", False), ("550 mailbox full", False)],
)
def test_only_unknown_mailbox_is_a_bounce(reply: str, bounced: bool) -> None:
    assert PermanentFailure(reply, 550).bounced is bounced


def test_outbox_keeps_each_mail_as_eml(outbox: Outbox) -> None:
    with smtplib.SMTP(outbox.host, outbox.port) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: one\r\n\r\nbody\r\n")
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: two\r\n\r\nbody\r\n")
    mails = outbox.messages()
    assert [m.read_bytes().split(b"\r\n")[0] for m in mails] == [b"Subject: one", b"Subject: two"]
