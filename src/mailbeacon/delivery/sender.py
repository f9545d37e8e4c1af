"""The campaign sender: a pipeline stage that sends queued campaigns, durably.

`POST /api/v1/campaigns/{id}/send` only marks a campaign `queued` and answers 202. This
stage, run under a lease by exactly one process of several, picks queued campaigns up,
and `sending` ones whose next copies came due (or that a dying process left), and
hands over what is due (`send_campaign(wait=False)`): a campaign waiting for its leads'
best hours blocks no other. Each copy is claimed before SMTP and marked after it, so a
resumed send loses none and repeats none but the one whose SMTP answer died with the
process (sent again under the same Message-ID; see `delivery.campaigns`). The CLI's
`campaign send` takes the same lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import sqlalchemy as sa

from mailbeacon.delivery.campaigns import (
    PENDING,
    AlreadySent,
    CampaignProgress,
    Progress,
    send_campaign,
)
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now, stages
from mailbeacon.store.schema import campaigns, messages
from mailbeacon.tokens import Signer

log = logging.getLogger("mailbeacon.delivery")
LEASE = "campaign-sends"
LEASE_SECONDS = 10.0
KEEP: Any = object()  # queue_campaign: the draft's own schedule stands


async def queue_campaign(
    db: Database, company_id: int, campaign_id: int, schedule: Any = KEEP
) -> bool:
    """Mark a draft campaign for sending; False if it is not a draft any more. A
    `schedule` (checked by `crm.campaigns.check_schedule`) replaces the draft's own."""
    values: dict[str, Any] = {"status": "queued"}
    if schedule is not KEEP:
        values["schedule"] = schedule
    async with db.begin() as conn:
        result = await conn.execute(
            sa.update(campaigns)
            .where(
                campaigns.c.id == campaign_id,
                campaigns.c.company_id == company_id,
                campaigns.c.status == "draft",
            )
            .values(values)
        )
    return result.rowcount == 1


def _copies(*where: Any) -> Any:
    return sa.exists().where(
        messages.c.campaign_id == campaigns.c.id,
        messages.c.forwarded_from_message_id.is_(None),
        messages.c.status.in_(PENDING),
        *where,
    )


async def _pending(db: Database) -> list[tuple[int, int]]:
    """Campaigns with work now: queued, or sending with a copy due or none waiting."""
    at = now()
    due = _copies(messages.c.scheduled_at <= at)
    waiting = _copies(messages.c.scheduled_at > at)
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(campaigns.c.company_id, campaigns.c.id)
            .where(
                (campaigns.c.status == "queued")
                | ((campaigns.c.status == "sending") & (due | ~waiting))
            )
            .order_by(campaigns.c.id)
        )
        return [(r.company_id, r.id) for r in rows]


async def _keep_lease(db: Database, holder: str, lost: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        if not await stages.acquire(db, LEASE, holder, LEASE_SECONDS):
            lost.set()
            return


async def send_under_lease(
    db: Database,
    settings: Settings,
    signer: Signer,
    holder: str,
    company_id: int,
    campaign_id: int,
    progress: Progress | None = None,
    *,
    wait: bool = True,
) -> CampaignProgress | None:
    """Send one campaign while renewing the lease; stop if another process takes it.
    `wait`: until every copy went (the CLI), else only those due now (the stage)."""
    lost = asyncio.Event()
    keeper = asyncio.create_task(_keep_lease(db, holder, lost))
    send = asyncio.create_task(
        send_campaign(db, settings, signer, company_id, campaign_id, progress, wait=wait)
    )
    try:
        await asyncio.wait({send, asyncio.create_task(lost.wait())}, return_when="FIRST_COMPLETED")
        if not send.done():
            send.cancel()
            log.warning("lost the campaign-sends lease; campaign %s resumes elsewhere", campaign_id)
            return None
        return send.result()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def _has_pending(db: Database, settings: Settings) -> bool:
    return bool(await _pending(db))


async def _send_pending(db: Database, settings: Settings) -> int:
    """One pass over the campaigns with work now; 0: the stage rests `poll` after it."""
    signer = Signer(settings.secret_keys)
    for company_id, campaign_id in await _pending(db):
        try:
            # The runner keeps the lease meanwhile, and cancels this should it be lost.
            await send_campaign(db, settings, signer, company_id, campaign_id, wait=False)
        except (AlreadySent, ValueError) as e:
            log.error("campaign %s cannot be sent: %s", campaign_id, e)
            await _mark(db, campaign_id, "failed")
    return 0


def stage(settings: Settings) -> Stage:
    """The `campaign-sends` stage. It holds the lease only while there is something to
    send, so the CLI's `campaign send` can take it between passes."""
    return Stage(
        LEASE,
        _send_pending,
        poll=settings.campaign_sends_poll_seconds,
        lease_seconds=settings.pipeline_lease_seconds,
        wanted=_has_pending,
    )


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    await run_stage(stage(settings), db, settings, stop)


async def _mark(db: Database, campaign_id: int, status: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            sa.update(campaigns).where(campaigns.c.id == campaign_id).values(status=status)
        )
