"""Event webhook delivery, below the server: the retry schedule, the signed body, and
the SSRF guard at the moment of sending."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from webhook_receiver import Receiver

from mailbeacon.automation import event_webhooks
from mailbeacon.automation.event_backoff import Backoff, EventWebhookTuning
from mailbeacon.automation.event_sender import Attempt, Sender, body_of, outcome
from mailbeacon.automation.event_stage import client
from mailbeacon.automation.webhooks import verify
from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import Principal
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema_webhooks import event_webhook_deliveries as outbox
from mailbeacon.store.webhook_outbox import Subscription, outbox_row, queue

DAY = 86_400.0


def test_the_retry_schedule_doubles_up_to_its_cap_for_a_day() -> None:
    backoff = Backoff()
    slowest = backoff.schedule(rand=lambda: 0.0)  # no jitter taken off
    assert slowest[:7] == [10, 20, 40, 80, 160, 320, 600]
    assert set(slowest[6:]) == {600}
    assert sum(slowest) <= DAY < sum(slowest) + 600  # tried until the day is over
    quickest = backoff.schedule(rand=lambda: 1.0)  # all the jitter taken off: half
    assert quickest[:3] == [5, 10, 20] and sum(quickest) <= DAY
    assert len(quickest) > len(slowest)
    for attempts in range(1, 30):  # jitter stays within its band
        wait = backoff.delay(attempts)
        assert 0.5 * min(600, 10 * 2 ** (attempts - 1)) <= wait <= 600


def test_an_hour_long_outage_is_well_inside_the_window() -> None:
    waits = Backoff().schedule(rand=lambda: 0.5)
    elapsed = [sum(waits[: i + 1]) for i in range(len(waits))]
    after_an_hour = [t for t in elapsed if t > 3600]
    assert after_an_hour and after_an_hour[0] - 3600 <= 600  # tried again within 10 min


def test_a_failed_attempt_waits_then_gives_up_after_the_window() -> None:
    backoff, at = Backoff(), now()
    row = {"id": 7, "attempts": 2, "created_at": at - dt.timedelta(hours=1)}
    failed = Attempt(7, 503, "answered 503", refused=False)
    later = outcome(row, failed, backoff, at, rand=lambda: 0.0)
    assert later["status"] == "pending" and later["attempts"] == 3
    assert later["next_attempt_at"] == at + dt.timedelta(seconds=40)
    old = {**row, "created_at": at - dt.timedelta(seconds=DAY - 30)}
    assert outcome(old, failed, backoff, at, rand=lambda: 0.0)["status"] == "failed"
    refused = Attempt(7, None, "ConnectError: refused: ...", refused=True)
    assert outcome(row, refused, backoff, at)["status"] == "failed"
    ok = outcome(row, Attempt(7, 204, None, refused=False), backoff, at)
    assert (ok["status"], ok["delivered_at"], ok["last_status"]) == ("delivered", at, 204)


def test_the_body_is_signed_and_carries_the_event_as_queued() -> None:
    event = {"id": 12, "type": "click", "url": "https://example.com/ä"}
    row = {"id": 99, "webhook_id": 3, "payload": json.dumps(event)}
    body = body_of(row, 1_700_000_000)
    assert json.loads(body) == {
        "webhook_id": 3, "delivery_id": 99, "timestamp": 1_700_000_000, "event": event,
    }  # fmt: skip
    assert verify("k" * 8, body, "sha256=" + __import__("hmac").new(
        b"k" * 8, body, "sha256").hexdigest())  # fmt: skip


@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_loopback_receiver_is_refused_at_sending_unless_allowed(
    db: Database, allow_private: bool
) -> None:
    receiver = Receiver("k" * 8)
    receiver.start()
    async with db.begin() as conn:
        company = await create_company(conn, "Acme", "ultimate")
        who = Principal(user_id=0, company_id=company, role="administrator", plan="ultimate",
                        email="ada@acme.test")  # fmt: skip
        body = event_webhooks.EventWebhookIn(url=receiver.url, secret="k" * 8, events=["open"])
        hook = await event_webhooks.create(conn, who, body, allow_private=True)
        sub = Subscription(hook["id"], company, frozenset({"open"}), frozenset({"human"}))
        payload = json.dumps({"id": 1, "type": "open", "lead_id": 5})
        await queue(conn, [outbox_row(sub, 5, 1, "open", "event:1", payload, now())])
    settings = Settings(database_url="sqlite://", webhook_allow_private=allow_private)
    tuning = EventWebhookTuning(backoff_base=60)
    try:
        async with client(settings, tuning) as http:
            sender = Sender(db, http, tuning)
            assert await sender.start_due() == 1
            await sender.collect(5)
        async with db.connect() as conn:
            row = (await conn.execute(select(outbox))).mappings().one()
    finally:
        receiver.kill()
    if allow_private:
        assert (row["status"], row["last_status"], len(receiver.got)) == ("delivered", 200, 1)
    else:
        assert row["status"] == "failed" and "non-public address (127.0.0.1)" in row["last_error"]
        assert receiver.got == []
