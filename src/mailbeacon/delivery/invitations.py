"""The invitation mail: a plain-text note to a new user with their link to set a password.

Not a message to a lead: no pixel, no tracked links, no unsubscribe. Its Message-ID
names the company (`notification_id_header`), so the local outbox shows it to that
company alone, as it does a rule's notification to a lead's owner.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

from mailbeacon.compose.headers import (
    address_header,
    configured_address,
    notification_id_header,
    one_line,
    sender_domain,
)
from mailbeacon.compose.mime import WIRE, as_bytes, set_headers
from mailbeacon.delivery.smtp import SmtpTransport, Transport
from mailbeacon.settings import Settings


def invitation_mail(
    settings: Settings, *, company_id: int, company: str, inviter: str, email: str, link: str
) -> EmailMessage:
    company, inviter = one_line(company), one_line(inviter)
    mail = EmailMessage(policy=WIRE)
    set_headers(
        mail,
        {
            "From": configured_address(settings.mail_from),
            "To": address_header(None, email),
            "Subject": f"{inviter} invited you to {company} on mailbeacon",
            "Message-ID": notification_id_header(company_id, sender_domain(settings.mail_from)),
        },
    )
    mail.set_content(
        f"{inviter} invited you to join {company} on mailbeacon.\n\n"
        f"Set your password here (the link works once, for 7 days):\n{link}\n\n"
        f"Then sign in at {settings.base_url}/login as {email}.\n"
        "If you did not expect this, ignore this mail.\n"
    )
    return mail


async def send_invitation(
    settings: Settings, mail: EmailMessage, transport: Transport | None = None
) -> None:
    """Through the configured SMTP server; raises the transport's DeliveryError."""
    await (transport or SmtpTransport(settings)).send(
        parseaddr(settings.mail_from)[1], [str(mail["To"])], as_bytes(mail)
    )
