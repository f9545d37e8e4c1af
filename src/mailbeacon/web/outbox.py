"""The local outbox of `make run`: the mails the demo SMTP server saved as .eml files.

A newcomer opens their first campaign here. The HTML part is served on its own URL and
shown in a sandboxed iframe (no scripts, no same-origin access) that still loads images,
so viewing the mail fetches the tracking pixel and records an open, as a reader would.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select, union

from mailbeacon.crm.users import Principal
from mailbeacon.store.schema import leads, users
from mailbeacon.web.auth import page_user, services
from mailbeacon.web.pages import render

router = APIRouter(include_in_schema=False)
NAME = re.compile(r"^[\w.-]+\.eml$")
# The mail's HTML may load images (the pixel) and inline styles; nothing else.
MAIL_CSP = "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src *"


def outbox_dir(request: Request) -> Path:
    return Path(services(request).settings.var_dir) / "outbox"


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as f:
        return BytesParser(policy=policy.default).parse(f)  # type: ignore[return-value]


def _summary(path: Path) -> dict[str, Any]:
    mail = _parse(path)
    return {
        "name": path.name,
        "subject": mail.get("Subject", "(no subject)"),
        "to": mail.get("To", ""),
        "date": mail.get("Date", ""),
    }


async def _company_addresses(request: Request, who: Principal) -> set[str]:
    """The addresses of the viewer's company: its leads (friends included) and users."""
    async with services(request).db.connect() as conn:
        rows = await conn.execute(
            union(
                select(leads.c.email).where(leads.c.company_id == who.company_id),
                select(users.c.email).where(users.c.company_id == who.company_id),
            )
        )
        return {email.lower() for (email,) in rows}


def _recipient(mail: EmailMessage) -> str:
    return parseaddr(str(mail.get("To", "")))[1].lower()


async def _find(request: Request, who: Principal, name: str) -> Path | None:
    # The name must be a plain file name in the outbox: no path tricks. One server's
    # outbox holds every company's mail: a mail is shown only to the company it went to.
    if not NAME.match(name):
        return None
    path = outbox_dir(request) / name
    if not path.is_file() or _recipient(_parse(path)) not in await _company_addresses(request, who):
        return None
    return path


@router.get("/outbox", response_class=HTMLResponse)
async def outbox_page(request: Request) -> Response:
    who, session = await page_user(request)
    folder = outbox_dir(request)
    files = sorted(folder.glob("*.eml"), reverse=True)[:1000] if folder.is_dir() else []
    ours = await _company_addresses(request, who)
    mails = [m for m in map(_summary, files) if parseaddr(m["to"])[1].lower() in ours][:200]
    return render(request, "outbox.html", who, session, mails=mails, folder=folder)


@router.get("/outbox/{name}", response_class=HTMLResponse)
async def outbox_mail(request: Request, name: str) -> Response:
    who, session = await page_user(request)
    path = await _find(request, who, name)
    if path is None:
        return HTMLResponse("no such mail in the outbox", status_code=404)
    mail = _parse(path)
    text = mail.get_body(preferencelist=("plain",))
    return render(
        request,
        "outbox_mail.html",
        who,
        session,
        mail=_summary(path),
        headers=list(mail.items()),
        text=text.get_content() if text else "",
        has_html=mail.get_body(preferencelist=("html",)) is not None,
    )


@router.get("/outbox/{name}/html")
async def outbox_html(request: Request, name: str) -> Response:
    who, _ = await page_user(request)
    path = await _find(request, who, name)
    part = _parse(path).get_body(preferencelist=("html",)) if path else None
    if part is None:
        return HTMLResponse("no HTML part", status_code=404)
    return HTMLResponse(
        part.get_content(),
        headers={"Content-Security-Policy": MAIL_CSP, "Referrer-Policy": "no-referrer"},
    )
