"""The local outbox of `make run`: the mails the demo SMTP server saved as .eml files.

One server's outbox holds every company's mail, so a mail is shown by what sent it, not
by where it went: a message is shown to the company whose `messages` row carries the
mail's Message-ID (addresses are unique only within a company), a rule's notification
to the company its Message-ID names, and only when it went to one of that company's
users. The mail's content is tracking data (its tokens open and click as the lead): the
sales roles get a 403, as on every tracking page.

Reading a mail here records nothing: its HTML is shown in a sandboxed frame that loads
no remote image (CSP), with our pixel's URL taken out as well. Opening it "as your lead
would" is a separate, explicit link: that page loads the images, so the pixel records
the newcomer's first tracked open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from mailbeacon.compose.headers import message_id_of, notification_company_of
from mailbeacon.crm.users import Principal
from mailbeacon.delivery.outbox import mail_path, newest_mails, read_mail
from mailbeacon.store.schema import messages, users
from mailbeacon.web.auth import services, tracking_user
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
SCANNED = 1000  # newest files looked at per listing
SHOWN = 200
# Reading: no remote content at all (so no pixel, whatever host it is on), inline styles
# and inline images only; framed by our own mail page alone.
READ_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
# As the lead would see it: images (the pixel) and styles load; still no scripts.
AS_LEAD_CSP = (
    "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *; "
    "frame-ancestors 'none'"
)
BLANK_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="


@dataclass(frozen=True, slots=True)
class Captured:
    """A saved mail and what our headers say about who sent it."""

    path: Path
    mail: EmailMessage

    @property
    def message_id_header(self) -> str:
        return str(self.mail.get("Message-ID", "")).strip()

    @property
    def recipients(self) -> list[str]:
        return [addr.lower() for _, addr in getaddresses([str(self.mail.get("To", ""))])]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.path.name,
            "subject": str(self.mail.get("Subject", "(no subject)")),
            "to": str(self.mail.get("To", "")),
            "date": str(self.mail.get("Date", "")),
            "notification": notification_company_of(self.message_id_header) is not None,
        }


def outbox_dir(request: Request) -> Path:
    return Path(services(request).settings.var_dir) / "outbox"


async def _sent_by(request: Request, who: Principal, found: list[Captured]) -> list[Captured]:
    """The mails among `found` that the viewer's company sent."""
    ids = {i for c in found if (i := message_id_of(c.message_id_header)) is not None}
    notices = [c for c in found if notification_company_of(c.message_id_header) == who.company_id]
    ours: dict[int, str] = {}
    staff: set[str] = set()
    async with services(request).db.connect() as conn:
        if ids:
            rows = await conn.execute(
                select(messages.c.id, messages.c.headers).where(
                    messages.c.company_id == who.company_id, messages.c.id.in_(ids)
                )
            )
            ours = {row.id: str((row.headers or {}).get("Message-ID", "")).strip() for row in rows}
        if notices:
            rows = await conn.execute(
                select(users.c.email).where(users.c.company_id == who.company_id)
            )
            staff = {email.lower() for (email,) in rows}

    def sent(c: Captured) -> bool:
        header = c.message_id_header
        if (message_id := message_id_of(header)) is not None:
            # The whole header, random part included: the id alone is guessable.
            return ours.get(message_id) == header
        if notification_company_of(header) == who.company_id:
            to = c.recipients
            return len(to) == 1 and to[0] in staff
        return False

    return [c for c in found if sent(c)]


async def _find(request: Request, who: Principal, name: str) -> Captured | None:
    path = mail_path(outbox_dir(request), name)
    if path is None:
        return None
    found = await _sent_by(request, who, [Captured(path, read_mail(path))])
    return found[0] if found else None


def without_pixels(html: str, base_url: str) -> str:
    """`html` with every URL of our pixel (`{base_url}/o/...`) made a blank inline image."""
    pixel = re.compile(re.escape(base_url.rstrip("/")) + r"/o/[^\s\"'<>()]*")
    return pixel.sub(BLANK_GIF, html)


@router.get("/outbox", response_class=HTMLResponse)
async def outbox_page(request: Request) -> Response:
    who, session = await tracking_user(request)
    folder = outbox_dir(request)
    found = [Captured(path, read_mail(path)) for path in newest_mails(folder, SCANNED)]
    mails = [c.summary() for c in await _sent_by(request, who, found)][:SHOWN]
    return render(request, "outbox.html", who, session, mails=mails, folder=folder)


@router.get("/outbox/{name}", response_class=HTMLResponse)
async def outbox_mail(request: Request, name: str) -> Response:
    who, session = await tracking_user(request)
    found = await _find(request, who, name)
    if found is None:
        return HTMLResponse("no such mail in the outbox", status_code=404)
    text = found.mail.get_body(preferencelist=("plain",))
    return render(
        request,
        "outbox_mail.html",
        who,
        session,
        mail=found.summary(),
        headers=list(found.mail.items()),
        text=text.get_content() if text else "",
        has_html=found.mail.get_body(preferencelist=("html",)) is not None,
    )


async def _html(request: Request, name: str) -> str | None:
    who, _ = await tracking_user(request)
    found = await _find(request, who, name)
    part = found.mail.get_body(preferencelist=("html",)) if found else None
    return str(part.get_content()) if part is not None else None


@router.get("/outbox/{name}/html")
async def outbox_html(request: Request, name: str) -> Response:
    """The mail's HTML to read: nothing remote loads, so nothing is recorded."""
    html = await _html(request, name)
    if html is None:
        return HTMLResponse("no HTML part", status_code=404)
    return HTMLResponse(
        without_pixels(html, services(request).settings.base_url),
        headers={"Content-Security-Policy": READ_CSP, "Referrer-Policy": "no-referrer"},
    )


@router.get("/outbox/{name}/as-lead")
async def outbox_as_lead(request: Request, name: str) -> Response:
    """The mail as the lead's client shows it: images load, the pixel records an open."""
    html = await _html(request, name)
    if html is None:
        return HTMLResponse("no HTML part", status_code=404)
    return HTMLResponse(
        html, headers={"Content-Security-Policy": AS_LEAD_CSP, "Referrer-Policy": "no-referrer"}
    )
