"""Sending a campaign: one tracked message per subscribed lead of its list.

Run by the campaign sender stage (`delivery.sender`) or the CLI, it reports progress
through a callback (the CLI's progress bar) and through the counters on the campaign
row (the dashboard). Two steps, both safe to repeat after a crash:

1. Plan: every lead of the list without this campaign's message gets a message row,
   `scheduled` at the time the campaign's schedule gives them (`schedule.plan`: at
   once, at a time, or at their best hour). Planned leads are passed over next time.
2. Hand over what is due, oldest first. Each copy is claimed and composed in one
   transaction (status `queued`, committed before SMTP), then marked `sent`/`failed`
   in another after SMTP answers. A copy found still `queued` after a crash is handed
   over again, composed afresh with the same tokens and Message-ID: a kill between
   the SMTP server's 250 and our commit repeats that one mail under the same
   Message-ID (receivers that de-duplicate by Message-ID show one); no copy is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parseaddr
from typing import Any, Literal

import sqlalchemy as sa

from mailbeacon.compose import Options, Recipient, as_bytes
from mailbeacon.compose.blocks import Condition
from mailbeacon.compose.engagement import engagement_of
from mailbeacon.compose.merge import fields_for, render, template_conditions
from mailbeacon.delivery.messages import (
    SUPPRESSED,
    LeadNotFound,
    Suppressed,
    campaign_options,
    compose_into,
    deliver,
    load_campaign,
    load_recipient,
)
from mailbeacon.delivery.schedule import plan
from mailbeacon.delivery.smtp import SmtpTransport, Transport
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import campaigns, leads, list_members, messages
from mailbeacon.tokens import Signer

# Leads whose engagement facts are fetched together, before their mail is composed.
FACTS_BATCH = 500
PENDING = ("scheduled", "queued")  # a copy not handed over yet, or whose hand-off died
WAIT_AT_MOST = 30.0  # seconds the CLI sleeps between looks for copies that came due


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


def _own(campaign_id: int) -> Any:
    """This campaign's own copies: a friend's forwarded copy belongs to the campaign too,
    but it is not a lead's own mail (a friend who is also on the list still gets theirs)."""
    return (messages.c.campaign_id == campaign_id, messages.c.forwarded_from_message_id.is_(None))


async def _recipients(
    db: Database, company_id: int, campaign_id: int, list_id: int
) -> list[tuple[int, str]]:
    """(lead id, status) of the list's leads that have no message of this campaign yet."""
    already = sa.select(messages.c.lead_id).where(*_own(campaign_id))
    query = (
        sa.select(leads.c.id, leads.c.status)
        .join(list_members, list_members.c.lead_id == leads.c.id)
        .where(
            list_members.c.list_id == list_id,
            leads.c.company_id == company_id,
            leads.c.id.not_in(already),
        )
        .order_by(leads.c.id)
    )
    async with db.connect() as conn:
        return [(r.id, r.status) for r in await conn.execute(query)]


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


async def _plan(db: Database, settings: Settings, campaign: Any, p: CampaignProgress) -> None:
    """Give every lead of the list without a copy their scheduled copy (not composed yet:
    merge fields and the Date header are filled in when it is handed over)."""
    if campaign.list_id is None:
        return
    found = await _recipients(db, campaign.company_id, campaign.id, campaign.list_id)
    wanted = [lead_id for lead_id, status in found if status not in SUPPRESSED]
    p.skipped += len(found) - len(wanted)  # no row for them: they are met again next time
    if not wanted:
        return
    options = campaign_options(campaign)
    async with db.begin() as conn:
        times = await plan(
            conn,
            campaign.company_id,
            wanted,
            campaign.schedule,
            now(),
            settings.schedule_hour_seconds,
        )
        base = {"company_id": campaign.company_id, "campaign_id": campaign.id, "html": ""}
        base |= {"subject": campaign.subject, "forward_link": options.forward_link}
        base |= {"source_html": campaign.html, "source_text": campaign.text}
        await conn.execute(
            sa.insert(messages),
            [
                base
                | {"lead_id": lead_id, "status": "scheduled", "created_at": now()}
                | {"scheduled_at": times[lead_id].at}
                for lead_id in wanted
            ],
        )


async def _due(db: Database, campaign_id: int) -> list[Any]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(messages.c.id, messages.c.lead_id, messages.c.subject, messages.c.headers)
            .where(*_own(campaign_id), messages.c.status.in_(PENDING))
            .where(messages.c.scheduled_at <= now())
            .order_by(messages.c.scheduled_at, messages.c.id)
        )
        return list(rows)


async def _next_due(db: Database, campaign_id: int) -> dt.datetime | None:
    async with db.connect() as conn:
        return (
            await conn.execute(
                sa.select(sa.func.min(messages.c.scheduled_at)).where(
                    *_own(campaign_id), messages.c.status.in_(PENDING)
                )
            )
        ).scalar()


async def _tally(db: Database, campaign_id: int) -> dict[str, int]:
    """This campaign's own copies by status: the counts survive any crash."""
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(messages.c.status, sa.func.count())
            .where(*_own(campaign_id))
            .group_by(messages.c.status)
        )
        return {status: int(n) for status, n in rows}


async def _hand_over(
    db: Database,
    settings: Settings,
    signer: Signer,
    campaign: Any,
    message: Any,
    options: Options,
    transport: Transport,
    engagement: frozenset[Condition],
) -> Outcome | None:
    """Claim, compose and store one due copy (one transaction), then send it and record
    the outcome (`deliver`, another). None: another process claimed it meanwhile."""
    row = {"id": message.id, "company_id": campaign.company_id, "lead_id": message.lead_id}
    row |= {"campaign_id": campaign.id, "subject": message.subject}
    row |= {"forward_link": options.forward_link}
    async with db.begin() as conn:
        mine = sa.update(messages).where(
            messages.c.id == message.id, messages.c.status.in_(PENDING)
        )
        try:
            recipient = await load_recipient(conn, campaign.company_id, message.lead_id)
        except (Suppressed, LeadNotFound):  # they left after it was planned: never sent
            await conn.execute(mine.values(status="skipped"))
            return "skipped"
        if (await conn.execute(mine.values(status="queued"))).rowcount != 1:
            return None
        recipient = replace(recipient, meets=engagement)
        _, mime = await compose_into(
            conn,
            settings,
            signer,
            row,
            recipient,
            html=campaign.html,
            text=campaign.text,
            options=options,
            status="queued",
            # Composed before (its hand-off died with a process): the same Message-ID.
            message_id_header=(message.headers or {}).get("Message-ID"),
        )
    status, _ = await deliver(
        db,
        transport,
        message_id=message.id,
        company_id=campaign.company_id,
        lead_id=message.lead_id,
        sender=parseaddr(settings.mail_from)[1],
        recipient=recipient.email,
        raw=as_bytes(mime),
    )
    return "sent" if status == "sent" else "failed"


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
    wait: bool = True,
) -> CampaignProgress:
    """Send the campaign to every subscribed lead of its list, each at their scheduled
    time; status draft/queued -> sending -> sent. Unsubscribed and bounced leads are
    skipped and counted. With `wait` (the CLI), returns once every copy went; without
    (the sender stage), once the copies due now went (`done` tells which)."""
    async with db.connect() as conn:
        row = await load_campaign(conn, company_id, campaign_id)
    if row.status == "sent":
        raise AlreadySent(f"campaign {campaign_id} was sent already")
    check_templates(row.subject, row.html, row.text)
    # Planning keeps a new campaign `queued`: one killed half way is planned again at
    # once, not only when its first copy comes due.
    p = CampaignProgress(campaign_id, 0)
    await _plan(db, settings, row, p)
    unlisted = p.skipped  # suppressed leads of the list, who have no copy
    options, transport = campaign_options(row), transport or SmtpTransport(settings)
    conditions = template_conditions([row.subject, row.html, row.text])
    while True:
        tally = await _tally(db, campaign_id)
        p.sent, p.failed = tally.get("sent", 0), tally.get("failed", 0)
        p.skipped = unlisted + tally.get("skipped", 0)
        p.total = sum(tally.values()) + unlisted
        await _save(db, p, "sending")
        if progress and p.processed:
            progress(p)
        due = await _due(db, campaign_id)
        for start in range(0, len(due), FACTS_BATCH):
            batch = due[start : start + FACTS_BATCH]
            met = await _engagement(db, company_id, conditions, [m.lead_id for m in batch])
            for message in batch:
                meets = met.get(message.lead_id, frozenset())
                outcome = await _hand_over(
                    db, settings, signer, row, message, options, transport, meets
                )
                if outcome is None:
                    continue
                p.count(outcome)
                await _save(db, p, "sending")
                if progress:
                    progress(p)
        upcoming = await _next_due(db, campaign_id)
        if upcoming is None:
            break
        if not wait:
            return p
        pause = (upcoming - now()).total_seconds()
        await asyncio.sleep(min(max(pause, 0.0), WAIT_AT_MOST))
    p.done = True
    await _save(db, p, "sent")
    if progress:
        progress(p)
    return p
