"""Forward to a friend: the friend gets a copy composed afresh for them, so their opens
and clicks are theirs and not the original lead's."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mailbeacon.delivery.messages import Suppressed, campaign_options, create_message, load_campaign
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import messages
from mailbeacon.tokens import Signer


async def send_forward_copy(
    db: Database,
    settings: Settings,
    signer: Signer,
    *,
    company_id: int,
    message_id: int,
    friend_lead_id: int,
) -> dict[str, Any] | None:
    """Send the friend their own tracked copy of `message_id`; None if they may not be
    mailed (unsubscribed or bounced: the forwarder is not told, the friend's wish wins)."""
    async with db.connect() as conn:
        row = (
            await conn.execute(
                sa.select(
                    messages.c.subject,
                    messages.c.source_html,
                    messages.c.source_text,
                    messages.c.campaign_id,
                ).where(messages.c.id == message_id, messages.c.company_id == company_id)
            )
        ).first()
        if row is None:
            raise LookupError(f"message {message_id} not found")
        options = None
        if row.campaign_id is not None:
            options = campaign_options(await load_campaign(conn, company_id, row.campaign_id))
    try:
        return await create_message(
            db,
            settings,
            signer,
            company_id=company_id,
            lead_id=friend_lead_id,
            subject=row.subject,
            html=row.source_html or "",
            text=row.source_text,
            forwarded_from_message_id=message_id,
            options=options,
        )
    except Suppressed:
        return None
