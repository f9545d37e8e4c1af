"""Sending a campaign: every subscribed lead of its list gets their own tracked copy."""

from __future__ import annotations

import email
from collections.abc import Awaitable, Callable
from email import policy
from typing import Any

import pytest
import sqlalchemy as sa

from mailbeacon.delivery import (
    AlreadySent,
    CampaignNotFound,
    CampaignProgress,
    Outbox,
    send_campaign,
)
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.schema import campaigns, message_links, messages
from mailbeacon.tokens import Signer


async def campaign_row(db: Database, campaign_id: int) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).one()


Send = Callable[..., Awaitable[CampaignProgress]]


@pytest.fixture
def send(db: Database, settings: Settings, signer: Signer, outbox: Outbox, company_id: int) -> Send:
    """send_campaign for this company, into the outbox."""
    settings = settings.with_(smtp_url=outbox.url)

    async def run(campaign_id: int, progress: Any = None, company: int = company_id) -> Any:
        return await send_campaign(db, settings, signer, company, campaign_id, progress)

    return run


async def test_campaign_skips_the_suppressed_and_counts(
    db: Database,
    settings: Settings,
    signer: Signer,
    outbox: Outbox,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    ann = await make_lead("ann@example.com", first_name="Ann")
    bob = await make_lead("bob@example.com", first_name="Bob")
    gone = await make_lead("gone@example.com", status="unsubscribed")
    campaign_id = await make_campaign([ann, bob, gone], utm={"source": "newsletter"})
    seen: list[tuple[int, int]] = []

    def progress(p: CampaignProgress) -> None:
        seen.append((p.processed, p.total))

    result = await send_campaign(
        db, settings.with_(smtp_url=outbox.url), signer, company_id, campaign_id, progress
    )

    assert (result.sent, result.skipped, result.failed, result.done) == (2, 1, 0, True)
    assert seen[-1] == (3, 3) and [s[0] for s in seen[:3]] == [1, 2, 3]
    row = await campaign_row(db, campaign_id)
    assert (row.status, row.sent_count, row.skipped_count, row.failed_count) == ("sent", 2, 1, 0)
    assert row.sent_at is not None
    mails = [
        email.message_from_bytes(m.read_bytes(), policy=policy.default) for m in outbox.messages()
    ]
    assert sorted(m["Subject"] for m in mails) == ["Hi Ann", "Hi Bob"]
    async with db.connect() as conn:
        links = sa.select(message_links.c.url).where(message_links.c.kind == "link")
        urls = (await conn.execute(links)).scalars().all()
        sent = (await conn.execute(sa.select(messages.c.campaign_id, messages.c.status))).all()
    assert set(sent) == {(campaign_id, "sent")}
    # The campaign asked for UTM tags: the stored destinations carry them.
    assert set(urls) == {
        "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=Spring+sale"
    }

    with pytest.raises(AlreadySent):
        await send_campaign(db, settings, signer, company_id, campaign_id)


async def test_an_interrupted_send_resumes_without_duplicates(
    db: Database, send: Send, outbox: Outbox, make_lead: Any, make_campaign: Any
) -> None:
    ann = await make_lead("ann@example.com")
    bob = await make_lead("bob@example.com")
    campaign_id = await make_campaign([ann, bob])

    def stop_after_first(p: CampaignProgress) -> None:
        if p.processed == 1:
            raise KeyboardInterrupt  # the process died mid-campaign

    with pytest.raises(KeyboardInterrupt):
        await send(campaign_id, stop_after_first)
    assert (await campaign_row(db, campaign_id)).status == "sending"

    result = await send(campaign_id)
    assert (result.sent, result.total) == (2, 2)
    assert len(outbox.messages()) == 2


async def test_a_broken_template_stops_before_anything_is_sent(
    db: Database, send: Send, outbox: Outbox, make_lead: Any, make_campaign: Any
) -> None:
    ann = await make_lead("ann@example.com")
    campaign_id = await make_campaign([ann], html="<p>Hi {{ first_name </p>")
    with pytest.raises(ValueError, match="merge field error on line 1"):
        await send(campaign_id)
    assert (await campaign_row(db, campaign_id)).status == "draft"
    assert outbox.messages() == []
    with pytest.raises(CampaignNotFound):
        await send(campaign_id, company=0)
