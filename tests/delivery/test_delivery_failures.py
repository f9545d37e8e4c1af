"""What happens when mail must not or cannot go out: suppression, bounces, retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from mailbeacon.delivery import LeadNotFound, SmtpTransport, Suppressed, create_message
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import companies, leads, message_links, messages
from mailbeacon.tokens import Signer

Send = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def handler(scripted_smtp: tuple[Any, str]) -> Any:
    return scripted_smtp[0]


@pytest.fixture
def send(
    db: Database,
    settings: Settings,
    signer: Signer,
    company_id: int,
    scripted_smtp: tuple[Any, str],
) -> Send:
    """create_message for a lead, through the scripted server, with quick retries."""

    async def run(lead_id: int, url: str = scripted_smtp[1], **kwargs: Any) -> dict[str, Any]:
        transport = SmtpTransport(settings.with_(smtp_url=url), attempts=3, backoff=0.01)
        kwargs.setdefault("company_id", company_id)
        return await create_message(
            db,
            settings,
            signer,
            lead_id=lead_id,
            subject="Hi",
            html='<p><a href="https://example.com">x</a></p>',
            transport=transport,
            **kwargs,
        )

    return run


async def count(db: Database, table: Any) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar())


async def lead_status(db: Database, lead_id: int) -> str:
    async with db.connect() as conn:
        query = sa.select(leads.c.status).where(leads.c.id == lead_id)
        return str((await conn.execute(query)).scalar())


@pytest.mark.parametrize("status", ["unsubscribed", "bounced"])
async def test_suppressed_lead_gets_nothing(
    db: Database, send: Send, handler: Any, make_lead: Any, status: str
) -> None:
    lead_id = await make_lead("gone@example.com", status=status)
    with pytest.raises(Suppressed, match=status):
        await send(lead_id)
    assert await count(db, messages) == 0 and await count(db, message_links) == 0
    assert handler.received == []


async def test_another_companys_lead_is_not_found(db: Database, send: Send, make_lead: Any) -> None:
    lead_id = await make_lead("ann@example.com")
    async with db.begin() as conn:
        insert = companies.insert().values(name="Other", plan="trial", created_at=now())
        other = (await conn.execute(insert)).inserted_primary_key[0]
    with pytest.raises(LeadNotFound):
        await send(lead_id, company_id=other)


async def test_5xx_marks_the_message_failed(
    db: Database, send: Send, handler: Any, make_lead: Any
) -> None:
    handler.data_replies = ["554 5.7.1 Message rejected as spam", "250 OK"]
    lead_id = await make_lead("ann@example.com")
    answer = await send(lead_id)
    assert answer["status"] == "failed" and "5.7.1" in answer["error"]
    assert handler.received == []  # not retried
    assert await lead_status(db, lead_id) == "subscribed"


async def test_unknown_mailbox_bounces_the_lead(
    db: Database, send: Send, handler: Any, make_lead: Any
) -> None:
    handler.rcpt_replies["nobody@example.com"] = "550 5.1.1 No such user"
    lead_id = await make_lead("nobody@example.com")
    answer = await send(lead_id)
    assert answer["status"] == "failed" and "5.1.1" in answer["error"]
    assert await lead_status(db, lead_id) == "bounced"
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(messages))).one()
    assert (row.status, row.error) == ("failed", answer["error"])
    with pytest.raises(Suppressed):  # and from now on gets nothing
        await send(lead_id)


@pytest.mark.parametrize(
    ("replies", "status"),
    [
        (["451 4.3.0 Try again later", "421 4.7.0 Busy"], "sent"),
        (["451 4.3.0 Try again later"] * 3, "failed"),  # three attempts, then give up
    ],
)
async def test_4xx_is_retried(
    db: Database,
    send: Send,
    handler: Any,
    make_lead: Any,
    replies: list[str],
    status: str,
) -> None:
    handler.data_replies = list(replies)
    lead_id = await make_lead("ann@example.com")
    answer = await send(lead_id)
    assert answer["status"] == status
    assert len(handler.received) == (status == "sent")
    assert await lead_status(db, lead_id) == "subscribed"


async def test_no_server_is_a_temporary_failure(send: Send, make_lead: Any) -> None:
    lead_id = await make_lead("ann@example.com")
    answer = await send(lead_id, url="smtp://127.0.0.1:9")
    assert answer["status"] == "failed" and answer["error"]


async def test_a_hard_bounce_is_queued_for_bounce_webhooks(
    db: Database, send: Send, handler: Any, make_lead: Any, company_id: int
) -> None:
    import json

    from mailbeacon.automation import event_webhooks
    from mailbeacon.crm.users import Principal
    from mailbeacon.store.schema_webhooks import event_webhook_deliveries as outbox

    who = Principal(user_id=0, company_id=company_id, role="administrator", plan="ultimate",
                    email="ada@acme.test")  # fmt: skip
    async with db.begin() as conn:
        for events in (["bounce", "open"], ["open"]):  # only the first wants bounces
            body = {"url": "https://hooks.example.com/", "secret": "x" * 8, "events": events}
            await event_webhooks.create(conn, who, event_webhooks.EventWebhookIn(**body))
    handler.rcpt_replies["nobody@example.com"] = "550 5.1.1 No such user"
    handler.data_replies = ["554 5.7.1 Message rejected as spam"]  # for ann: not a bounce
    bounced, refused = await make_lead("nobody@example.com"), await make_lead("ann@example.com")
    message = (await send(bounced))["id"]
    await send(refused)
    async with db.connect() as conn:
        rows = (await conn.execute(sa.select(outbox))).mappings().all()
    assert [(r["webhook_id"], r["lead_id"], r["event_type"]) for r in rows] == [
        (1, bounced, "bounce")
    ]
    event = json.loads(rows[0]["payload"])
    assert event["type"] == "bounce" and event["message_id"] == message
    assert "5.1.1" in event["reason"] and event["id"] is None
