"""A campaign sent at each lead's best hour: the marketer schedules it through the API,
the sender plans every copy, hands over only those whose time has come, and each
message and the progress show when the rest will go."""

from __future__ import annotations

import datetime as dt
import email
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from mailbeacon.crm.erase import erase_lead
from mailbeacon.crm.users import Principal
from mailbeacon.delivery import SmtpTransport, send_campaign
from mailbeacon.delivery.besthour import local_hour
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.render import iso
from mailbeacon.store.schema import events, messages
from mailbeacon.tokens import Signer

PARIS = ZoneInfo("Europe/Paris")


def days_ago(days: int, hour: int, minute: int, tz: ZoneInfo | None = None) -> dt.datetime:
    """A naive UTC time `days` ago at hour:minute on the clock of `tz` (UTC if None)."""
    local = (dt.datetime.now(tz or dt.UTC) - dt.timedelta(days=days)).replace(
        hour=hour, minute=minute, second=0, microsecond=0
    )
    return local.astimezone(dt.UTC).replace(tzinfo=None)


async def opened(
    db: Database, company_id: int, lead_id: int, times: list[dt.datetime], **how: Any
) -> None:
    values = {"type": "open", "company_id": company_id, "lead_id": lead_id, "message_id": 0}
    values |= {"verdict": "human", "reason": "", "inferred": False, "forwarded": False}
    async with db.begin() as conn:
        await conn.execute(events.insert(), [values | how | {"at": at} for at in times])


async def test_each_lead_gets_their_hour_and_the_rest_the_companys(
    api: httpx.AsyncClient,
    db: Database,
    smtp_settings: Settings,
    scripted_smtp: Any,
    key: dict[str, str],
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    # Ann lives in Paris and opens at nine; Bob has no zone but opens from France at
    # nine Paris time; Cid opened twice at nine (not a habit yet) and was prefetched by
    # Apple at three many times (a machine: says nothing); Dan never opened.
    ann = await make_lead("ann@example.com", timezone="Europe/Paris")
    bob = await make_lead("bob@example.com")
    cid = await make_lead("cid@example.com")
    dan = await make_lead("dan@example.com")
    eve = await make_lead("eve@example.com")  # not in the campaign: the company's habit
    await opened(db, company_id, ann, [days_ago(d, 9, 5, PARIS) for d in (3, 4, 5)])
    await opened(db, company_id, bob, [days_ago(d, 9, 40, PARIS) for d in (2, 6, 7)], country="FR")
    await opened(db, company_id, cid, [days_ago(d, 9, 0, PARIS) for d in (2, 3)], country="FR")
    prefetches = [days_ago(d, 3, 0) for d in range(1, 9)]
    await opened(db, company_id, cid, prefetches, verdict="prefetch")
    await opened(db, company_id, eve, [days_ago(d, 15, 30) for d in range(1, 9)])
    campaign = await make_campaign([ann, bob, cid, dan])
    base = f"/api/v1/campaigns/{campaign}"

    # The schedule is a draft's field; a bad one is refused naming the field.
    for bad in (
        {"best_hour": True, "within_hours": 0},
        {"best_hour": False},
        {"at": "tomorrow"},
        {"at": "2026-12-01T09:00:00Z", "best_hour": True},
    ):
        r = await api.patch(base, json={"schedule": bad}, headers=key)
        assert (r.status_code, r.json()["error"]["field"][:8]) == (422, "schedule"), (bad, r.text)
    r = await api.patch(base, json={"schedule": {"at": "2030-01-01T10:00:00+02:00"}}, headers=key)
    assert r.json()["schedule"] == {"at": "2030-01-01T08:00:00Z"}
    # ...and the send call may replace it.
    body = {"schedule": {"best_hour": True, "within_hours": 24}}
    assert (await api.post(f"{base}/send", json=body, headers=key)).status_code == 202
    assert (await api.get(base, headers=key)).json()["schedule"] == body["schedule"]

    start = now()
    signer = Signer(smtp_settings.secret_keys)
    first = await send_campaign(db, smtp_settings, signer, company_id, campaign, wait=False)
    end = now()
    async with db.connect() as conn:
        rows = (
            await conn.execute(sa.select(messages).where(messages.c.campaign_id == campaign))
        ).all()
    copies = {r.lead_id: r for r in rows}
    expected = {ann: (9, PARIS), bob: (9, PARIS), cid: (15, PARIS), dan: (15, None)}
    for lead_id, (hour, tz) in expected.items():
        at = copies[lead_id].scheduled_at
        assert start <= at < end + dt.timedelta(hours=24), lead_id
        assert local_hour(at, tz) == hour, (lead_id, at)
        # On the hour, unless the hour is now (then at once).
        assert at.minute == at.second == 0 or at <= end, (lead_id, at)

    # Only the copies whose time has come went; the others wait, composed later.
    due = {r.lead_id for r in rows if r.scheduled_at <= end}
    assert {r.lead_id for r in rows if r.status == "sent"} == due
    assert {r.lead_id for r in rows if r.status == "scheduled"} == set(expected) - due
    assert len(scripted_smtp[0].received) == len(due) == first.sent
    assert first.done is (due == set(expected))

    message = (await api.get(f"/api/v1/messages/{copies[ann].id}", headers=key)).json()
    assert message["scheduled_at"] == iso(copies[ann].scheduled_at)
    progress = (await api.get(f"{base}/progress", headers=key)).json()
    waiting = sorted(r.scheduled_at for r in rows if r.lead_id not in due)
    assert (progress["status"], progress["sent"], progress["scheduled"]) == (
        "sent" if not waiting else "sending",
        len(due),
        len(waiting),
    )
    if waiting:
        assert progress["next_at"] == iso(waiting[0])
        assert progress["last_at"] == iso(waiting[-1])


async def test_a_copy_due_is_handed_over_once_and_a_late_unsubscribe_is_honoured(
    db: Database,
    smtp_settings: Settings,
    scripted_smtp: Any,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    ann = await make_lead("ann@example.com")
    bob = await make_lead("bob@example.com")
    cy = await make_lead("cy@example.com")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
    campaign = await make_campaign([ann, bob, cy], status="queued", schedule={"at": soon})
    signer = Signer(smtp_settings.secret_keys)
    first = await send_campaign(db, smtp_settings, signer, company_id, campaign, wait=False)
    assert (first.sent, first.total, first.done) == (0, 3, False)
    # Bob leaves and Cy is erased while their copies wait: neither is ever sent.
    async with db.begin() as conn:
        await conn.execute(
            sa.text("UPDATE leads SET status='unsubscribed' WHERE id=:i"), {"i": bob}
        )
        admin = Principal(0, company_id, "administrator", "essential", "admin@acme.example")
        await erase_lead(conn, admin, cy)
    done = await send_campaign(db, smtp_settings, signer, company_id, campaign)  # waits
    assert (done.sent, done.skipped, done.total, done.done) == (1, 2, 3, True)
    assert len(scripted_smtp[0].received) == 1
    async with db.connect() as conn:
        query = sa.select(messages.c.lead_id, messages.c.status).order_by(messages.c.id)
        rows = (await conn.execute(query)).all()
    assert [tuple(r) for r in rows[:2]] == [(ann, "sent"), (bob, "skipped")]
    assert rows[2].status == "skipped"  # Cy's, now the erased shell's


class DiesAfterSmtp:
    """Hands the mail to the real SMTP server, then the process "dies" before the
    outcome is written: the one window where a kill makes a repeat."""

    def __init__(self, settings: Settings) -> None:
        self.smtp = SmtpTransport(settings)

    async def send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        await self.smtp.send(sender, recipients, raw)
        raise KeyboardInterrupt


async def test_a_copy_whose_smtp_outcome_died_goes_again_under_the_same_message_id(
    db: Database,
    smtp_settings: Settings,
    scripted_smtp: Any,
    make_lead: Any,
    make_campaign: Any,
    company_id: int,
) -> None:
    ann = await make_lead("ann@example.com")
    campaign = await make_campaign([ann], status="queued")
    signer = Signer(smtp_settings.secret_keys)
    with pytest.raises(KeyboardInterrupt):
        await send_campaign(
            db, smtp_settings, signer, company_id, campaign, transport=DiesAfterSmtp(smtp_settings)
        )
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(messages))).one()
    assert row.status == "queued"  # claimed and composed, outcome unknown
    done = await send_campaign(db, smtp_settings, signer, company_id, campaign)
    assert (done.sent, done.total, done.done) == (1, 1, True)
    got = [email.message_from_bytes(raw)["Message-ID"] for raw in scripted_smtp[0].received]
    assert got == [row.headers["Message-ID"]] * 2  # the repeat is recognisably the same mail
