"""One message for one lead: suppression check, store, instrument, store again, send.

The message row is inserted before instrumenting because every token carries its id;
both happen in one transaction, so a broken template stores nothing. Sending happens
after the commit (no database lock held across the network), and its outcome is
written back to the row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.compose import (
    Instrumented,
    Note,
    Options,
    Recipient,
    as_bytes,
    build_mime,
    instrument,
    sent_headers,
)
from mailbeacon.compose.blocks import Condition
from mailbeacon.compose.engagement import engagement_of
from mailbeacon.compose.merge import template_conditions
from mailbeacon.delivery.smtp import PermanentFailure, SmtpTransport, TemporaryFailure, Transport
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, leads, message_links, messages
from mailbeacon.store.webhook_outbox import queue_bounce
from mailbeacon.tokens import Signer

SUPPRESSED = frozenset({"unsubscribed", "bounced"})


@dataclass(frozen=True, slots=True)
class Tracking:
    """What a campaign or message tracks (the API's `tracking` object)."""

    opens: bool = True
    clicks: bool = True


class LeadNotFound(LookupError):
    """No such lead in this company (another company's lead is not found either)."""


class CampaignNotFound(LookupError):
    """No such campaign in this company."""


class Suppressed(Exception):
    """The lead unsubscribed or bounced: no mail may be sent to them (API: 409)."""

    def __init__(self, lead_id: int, status: str) -> None:
        super().__init__(f"lead {lead_id} is {status}; no mail is sent to them")
        self.lead_id = lead_id
        self.status = status


async def load_recipient(conn: AsyncConnection, company_id: int, lead_id: int) -> Recipient:
    """The lead as a recipient; raises LeadNotFound, or Suppressed when mail is refused."""
    row = (
        await conn.execute(
            sa.select(leads).where(leads.c.id == lead_id, leads.c.company_id == company_id)
        )
    ).first()
    if row is None:
        raise LeadNotFound(f"lead {lead_id} not found")
    if row.status in SUPPRESSED:
        raise Suppressed(lead_id, row.status)
    custom = row.fields if isinstance(row.fields, dict) else None
    return Recipient(
        row.id, row.email, row.first_name, row.last_name, custom, tracking=bool(row.tracking)
    )


async def with_engagement(
    conn: AsyncConnection, company_id: int, recipient: Recipient, templates: list[str | None]
) -> Recipient:
    """The recipient with the engagement conditions it meets, of those the templates
    use (one query per condition: for one lead; a campaign fetches them in bulk)."""
    conditions = template_conditions(templates)
    if not conditions:
        return recipient
    met = await engagement_of(conn, company_id, conditions, [recipient.id])
    return replace(recipient, meets=met.get(recipient.id, frozenset()))


def campaign_options(row: Any) -> Options:
    """How a campaign row asks its mail to be instrumented."""
    utm = dict(row.utm) if row.utm else None
    if utm is not None:
        utm.setdefault("campaign", row.name)
    return Options(
        pixel_placement=row.pixel_placement or "body",
        pixel_format=row.pixel_format or "gif",
        utm=utm,
        forward_link=bool(row.forward_link),
        track_opens=bool(row.track_opens),
        track_clicks=bool(row.track_clicks),
    )


async def load_campaign(conn: AsyncConnection, company_id: int, campaign_id: int) -> Any:
    row = (
        await conn.execute(
            sa.select(campaigns).where(
                campaigns.c.id == campaign_id, campaigns.c.company_id == company_id
            )
        )
    ).first()
    if row is None:
        raise CampaignNotFound(f"campaign {campaign_id} not found")
    return row


async def deliver(
    db: Database,
    transport: Transport,
    *,
    message_id: int,
    company_id: int,
    lead_id: int,
    sender: str,
    recipient: str,
    raw: bytes,
) -> tuple[str, str | None]:
    """Send, then record the outcome on the message (and a hard bounce on the lead)."""
    status, error, bounced = "sent", None, False
    try:
        await transport.send(sender, [recipient], raw)
    except (PermanentFailure, TemporaryFailure) as exc:
        status, error = "failed", str(exc)
        bounced = isinstance(exc, PermanentFailure) and exc.bounced
    async with db.begin() as conn:
        values: dict[str, Any] = {"status": status, "error": error}
        if status == "sent":
            values["sent_at"] = now()
        await conn.execute(sa.update(messages).where(messages.c.id == message_id).values(values))
        if bounced:
            await conn.execute(
                sa.update(leads)
                .where(leads.c.id == lead_id, leads.c.company_id == company_id)
                .values(status="bounced")
            )
            campaign_id = await conn.scalar(
                sa.select(messages.c.campaign_id).where(messages.c.id == message_id)
            )
            await queue_bounce(
                conn, company_id=company_id, lead_id=lead_id, message_id=message_id,
                campaign_id=campaign_id, error=error,
            )  # fmt: skip
    return status, error


async def create_message(
    db: Database,
    settings: Settings,
    signer: Signer,
    *,
    company_id: int,
    lead_id: int,
    subject: str,
    html: str,
    text: str | None = None,
    campaign_id: int | None = None,
    send: bool = True,
    forwarded_from_message_id: int | None = None,
    options: Options | None = None,
    transport: Transport | None = None,
    forward_link: bool | None = None,
    note: Note | None = None,
    tracking: Tracking | None = None,
    engagement: frozenset[Condition] | None = None,
) -> dict[str, Any]:
    """Instrument, store and (when `send`) deliver one message; the API's answer.

    `forward_link` None: as the campaign says (off without one). `note`: a forwarder's
    note to the friend this copy is for (see `compose.instrument`). `tracking`: opens
    and clicks switched off for this message (None: as the campaign says, else on); a
    lead who is not tracked gets neither, whatever is asked.
    note to the friend this copy is for (see `compose.instrument`). `engagement`: the
    conditions of the templates' blocks the lead meets, when the caller fetched them
    in bulk (None: fetched here).
    Raises LeadNotFound / CampaignNotFound (404), Suppressed (409) before anything is
    stored, and ValueError for a broken merge field template (422).
    """
    async with db.connect() as conn:
        recipient = await load_recipient(conn, company_id, lead_id)
        if engagement is None:
            recipient = await with_engagement(conn, company_id, recipient, [subject, html, text])
        else:
            recipient = replace(recipient, meets=engagement)
        if options is None and campaign_id is not None:
            options = campaign_options(await load_campaign(conn, company_id, campaign_id))
    options = options or Options()
    if forward_link is not None:
        options = replace(options, forward_link=forward_link)
    if tracking is not None:
        options = replace(options, track_opens=tracking.opens, track_clicks=tracking.clicks)
    # What this lead's mail really carries, recorded on the row for the report.
    options = options.for_recipient(recipient)
    async with db.begin() as conn:
        # The row first: its id goes into every token; the bodies are filled in below.
        row = {"company_id": company_id, "lead_id": lead_id, "campaign_id": campaign_id}
        row |= {"forwarded_from_message_id": forwarded_from_message_id, "subject": subject}
        row |= {"forward_link": options.forward_link}
        row |= {"track_opens": options.track_opens, "track_clicks": options.track_clicks}
        result = await conn.execute(
            sa.insert(messages).values(
                html="",
                source_html=html,
                source_text=text,
                status="stored",
                created_at=now(),
                **row,
            )
        )
        message_id = int(result.inserted_primary_key[0])
        answer, mime = await compose_into(
            conn,
            settings,
            signer,
            row | {"id": message_id},
            recipient,
            html=html,
            text=text,
            options=options,
            status="queued" if send else "stored",
            note=note,
        )
    if send:
        answer["status"], answer["error"] = await deliver(
            db,
            transport or SmtpTransport(settings),
            message_id=message_id,
            company_id=company_id,
            lead_id=lead_id,
            sender=parseaddr(settings.mail_from)[1],
            recipient=recipient.email,
            raw=as_bytes(mime),
        )
    return answer


async def compose_into(
    conn: AsyncConnection,
    settings: Settings,
    signer: Signer,
    row: dict[str, Any],
    recipient: Recipient,
    *,
    html: str,
    text: str | None,
    options: Options,
    status: str,
    note: Note | None = None,
    message_id_header: str | None = None,
) -> tuple[dict[str, Any], EmailMessage]:
    """Instrument the message row `row` (id, company_id, lead_id, campaign_id, subject,
    forward_link) for `recipient` and store it exactly as it will be sent, as `status`.
    Composing again (a scheduled send resumed after a crash) gives the same tokens; pass
    the `Message-ID` it was stored with so the repeat carries it too (only the Date is
    new), and a receiver that de-duplicates by Message-ID shows one mail."""
    # What this lead's mail really carries (their own `tracking` wins), for the report.
    options = options.for_recipient(recipient)
    row = row | {"track_opens": options.track_opens, "track_clicks": options.track_clicks}
    inst = instrument(
        subject=row["subject"],
        html=html,
        text=text,
        recipient=recipient,
        message_id=row["id"],
        company_id=row["company_id"],
        signer=signer,
        settings=settings,
        options=options,
        note=note,
    )
    if message_id_header:
        inst = replace(inst, headers={**inst.headers, "Message-ID": message_id_header})
    mime = build_mime(inst, settings)
    answer = _answer(row["id"], row, inst, mime, status)
    await conn.execute(sa.delete(message_links).where(message_links.c.message_id == row["id"]))
    await _store(conn, row["company_id"], answer, inst.links)
    return answer, mime


def _answer(
    message_id: int, row: dict[str, Any], inst: Instrumented, mime: EmailMessage, status: str
) -> dict[str, Any]:
    """The API's view of a message (CONTRACT: POST /api/v1/messages), as it is sent."""
    return {
        "id": message_id,
        "lead_id": row["lead_id"],
        "campaign_id": row["campaign_id"],
        "forward_link": row["forward_link"],
        "tracking": {"opens": row["track_opens"], "clicks": row["track_clicks"]},
        "subject": inst.subject,
        "html": inst.html,
        "text": inst.text,
        "headers": sent_headers(mime),
        "links": [{"index": k.index, "url": k.url, "kind": k.kind} for k in inst.links],
        "status": status,
        "warnings": list(inst.warnings),
        "error": None,
    }


async def _store(
    conn: AsyncConnection, company_id: int, answer: dict[str, Any], links: tuple[Any, ...]
) -> None:
    """Write the message exactly as it will be sent, and its links by index."""
    await conn.execute(
        sa.update(messages)
        .where(messages.c.id == answer["id"])
        .values(
            subject=answer["subject"],
            html=answer["html"],
            text=answer["text"],
            headers=answer["headers"],
            warnings=answer["warnings"],
            status=answer["status"],
            track_opens=answer["tracking"]["opens"],
            track_clicks=answer["tracking"]["clicks"],
        )
    )
    if links:
        await conn.execute(
            sa.insert(message_links),
            [
                {
                    "message_id": answer["id"],
                    "link_index": link.index,
                    "company_id": company_id,
                    "url": link.url,
                    "kind": link.kind,
                }
                for link in links
            ],
        )
