"""Forward to a friend: the friend gets a copy composed afresh for them, so their opens
and clicks are theirs and not the original lead's.

The copy belongs to the original's campaign (`campaign_id`) and points back at the
original (`forwarded_from_message_id`): the campaign report counts the friend as a
forwarded reader, never as one of the leads it was sent to. It is composed from what the
sender wrote (`source_html`, and the campaign's subject template), with the campaign's
options, or the original message's own `forward_link` when it had no campaign, so the
friend can forward it on in turn.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mailbeacon.compose import Note, Options
from mailbeacon.delivery.messages import Suppressed, campaign_options, create_message, load_campaign
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import leads, messages
from mailbeacon.tokens import Signer


def note_intro(first_name: str | None, last_name: str | None, email: str) -> str:
    """Who the note is from, as the friend knows them: their name, else their address."""
    name = " ".join(p for p in (first_name, last_name) if p)
    return f"{name or email} forwarded this email to you and wrote:"


async def send_forward_copy(
    db: Database,
    settings: Settings,
    signer: Signer,
    *,
    company_id: int,
    message_id: int,
    friend_lead_id: int,
    note: str = "",
) -> dict[str, Any] | None:
    """Send the friend their own tracked copy of `message_id`, with the forwarder's
    `note` on top when they wrote one; None if the friend may not be mailed
    (unsubscribed or bounced: the forwarder is not told, the friend's wish wins)."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    messages.c.subject,
                    messages.c.source_html,
                    messages.c.source_text,
                    messages.c.campaign_id,
                    messages.c.forward_link,
                    leads.c.email,
                    leads.c.first_name,
                    leads.c.last_name,
                )
                .join(leads, leads.c.id == messages.c.lead_id)
                .where(messages.c.id == message_id, messages.c.company_id == company_id)
            )
        ).first()
        if row is None:
            raise LookupError(f"message {message_id} not found")
        options, subject = Options(forward_link=bool(row.forward_link)), row.subject
        if row.campaign_id is not None:
            campaign = await load_campaign(conn, company_id, row.campaign_id)
            # The campaign's subject template, merged for the friend like the body is
            # (the stored subject is the one merged for the lead: "Hi Ann").
            options, subject = campaign_options(campaign), campaign.subject
    text = note.strip()
    try:
        return await create_message(
            db,
            settings,
            signer,
            company_id=company_id,
            lead_id=friend_lead_id,
            subject=subject,
            html=row.source_html or "",
            text=row.source_text,
            campaign_id=row.campaign_id,
            forwarded_from_message_id=message_id,
            options=options,
            note=Note(text, note_intro(row.first_name, row.last_name, row.email)) if text else None,
        )
    except Suppressed:
        return None
