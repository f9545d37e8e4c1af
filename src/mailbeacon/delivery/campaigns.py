"""Sending a campaign: one tracked message per subscribed lead of its list.

Run by the campaign sender stage (`delivery.sender`) or the CLI, it reports progress
through a callback (the CLI's progress bar) and through the counters on the campaign
row (the dashboard). A send that was interrupted can be started again: leads that already got
this campaign's message are passed over, so nobody gets it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from mailbeacon.compose import Options, Recipient
from mailbeacon.compose.blocks import Condition
from mailbeacon.compose.engagement import engagement_of
from mailbeacon.compose.merge import fields_for, render, template_conditions
from mailbeacon.delivery.messages import (
    Suppressed,
    campaign_options,
    create_message,
    load_campaign,
)
from mailbeacon.delivery.smtp import SmtpTransport, Transport
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, leads, list_members, messages
from mailbeacon.tokens import Signer

# Leads whose engagement facts are fetched together, before their mail is composed.
FACTS_BATCH = 500


class AlreadySent(Exception):
    """The campaign was sent already; sending again would mail everyone twice (409)."""


Outcome = Literal["sent", "skipped", "failed"]


@dataclass
class CampaignProgress:
    campaign_id: int
    total: int
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    done: bool = False

    @property
    def processed(self) -> int:
        return self.sent + self.skipped + self.failed

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


Progress = Callable[[CampaignProgress], None]


async def _recipients(db: Database, company_id: int, campaign_id: int, list_id: int) -> list[int]:
    """Lead ids of the list that have no message of this campaign yet, in id order.

    A friend's forwarded copy belongs to the campaign too, but it is not the lead's own
    mail: a friend who is also on the list still gets theirs."""
    already = sa.select(messages.c.lead_id).where(
        messages.c.campaign_id == campaign_id, messages.c.forwarded_from_message_id.is_(None)
    )
    query = (
        sa.select(leads.c.id)
        .join(list_members, list_members.c.lead_id == leads.c.id)
        .where(
            list_members.c.list_id == list_id,
            leads.c.company_id == company_id,
            leads.c.id.not_in(already),
        )
        .order_by(leads.c.id)
    )
    async with db.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def _save(db: Database, p: CampaignProgress, status: str) -> None:
    values: dict[str, object] = {
        "status": status,
        "sent_count": p.sent,
        "skipped_count": p.skipped,
        "failed_count": p.failed,
    }
    if status == "sent":
        values["sent_at"] = now()
    async with db.begin() as conn:
        await conn.execute(
            sa.update(campaigns).where(campaigns.c.id == p.campaign_id).values(values)
        )


async def _send_one(
    db: Database,
    settings: Settings,
    signer: Signer,
    campaign: Any,
    lead_id: int,
    options: Options,
    transport: Transport,
    engagement: frozenset[Condition],
) -> Outcome:
    try:
        answer = await create_message(
            db,
            settings,
            signer,
            company_id=campaign.company_id,
            lead_id=lead_id,
            subject=campaign.subject,
            html=campaign.html,
            text=campaign.text,
            campaign_id=campaign.id,
            options=options,
            transport=transport,
            engagement=engagement,
        )
    except Suppressed:  # checked again per lead: they may have left since the list was read
        return "skipped"
    return "sent" if answer["status"] == "sent" else "failed"


async def _engagement(
    db: Database, company_id: int, conditions: set[Condition], lead_ids: list[int]
) -> dict[int, frozenset[Condition]]:
    """What the leads of one batch did, for the blocks shown by engagement: one query
    per condition for the whole batch (nothing at all without such blocks)."""
    if not conditions:
        return {}
    async with db.connect() as conn:
        return await engagement_of(conn, company_id, conditions, lead_ids)


def check_templates(subject: str, html: str, text: str | None) -> None:
    """Raise ValueError now, while the campaign is still a draft, if a template does not
    even parse: otherwise the first lead would stop the send half way."""
    sample = fields_for(Recipient(0, "lead@example.com"), unsubscribe_url="", forward_url="")
    for template, is_html in ((subject, False), (html, True), (text or "", False)):
        render(template, sample, html=is_html)
    template_conditions([subject, html, text])  # a block naming an unknown condition


async def send_campaign(
    db: Database,
    settings: Settings,
    signer: Signer,
    company_id: int,
    campaign_id: int,
    progress: Progress | None = None,
    *,
    transport: Transport | None = None,
) -> CampaignProgress:
    """Send the campaign to every subscribed lead of its list; status draft -> sending
    -> sent. Unsubscribed and bounced leads are skipped and counted."""
    async with db.connect() as conn:
        row = await load_campaign(conn, company_id, campaign_id)
    if row.status == "sent":
        raise AlreadySent(f"campaign {campaign_id} was sent already")
    check_templates(row.subject, row.html, row.text)
    lead_ids = [] if row.list_id is None else await _recipients(db, company_id, row.id, row.list_id)
    # Sent and failed carry on from an interrupted run; skipped leads have no message
    # row, so they are met (and counted) again.
    p = CampaignProgress(campaign_id, len(lead_ids), sent=row.sent_count, failed=row.failed_count)
    p.total += p.processed
    await _save(db, p, "sending")
    options, transport = campaign_options(row), transport or SmtpTransport(settings)
    conditions = template_conditions([row.subject, row.html, row.text])
    for start in range(0, len(lead_ids), FACTS_BATCH):
        batch = lead_ids[start : start + FACTS_BATCH]
        met = await _engagement(db, company_id, conditions, batch)
        for lead_id in batch:
            meets = met.get(lead_id, frozenset())
            p.count(await _send_one(db, settings, signer, row, lead_id, options, transport, meets))
            await _save(db, p, "sending")
            if progress:
                progress(p)
    p.done = True
    await _save(db, p, "sent")
    if progress:
        progress(p)
    return p
