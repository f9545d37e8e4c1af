"""Fixtures for the enrich tests: a company, a lead and a sent message with links, and a
way to insert raw hits as the edge would."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.store import Database
from mailbeacon.store.schema import companies, events, hits, leads, message_links, messages

SENT_AT = dt.datetime(2026, 1, 5, 9, 0, 0)
LINKS = [
    (0, "link", "https://example.com/a"),
    (1, "link", "https://example.com/b"),
    (2, "link", "https://example.com/c"),
    (3, "honeypot", "https://example.com/trap"),
    (4, "unsubscribe", "https://example.com/unsub"),
]


@dataclass
class Mail:
    db: Database
    company_id: int
    lead_id: int
    message_id: int
    campaign_id: int | None = None
    sent_at: dt.datetime = SENT_AT

    async def hit(self, kind: str, seconds: float, ip: str, ua: str | None, **extra: Any) -> int:
        """Insert a raw hit `seconds` after the message was sent; its id."""
        row = {
            "at": SENT_AT + dt.timedelta(seconds=seconds),
            "kind": kind,
            "company_id": self.company_id,
            "message_id": self.message_id,
            "lead_id": self.lead_id,
            "ip": ip,
            "user_agent": ua,
            "method": "GET",
        } | extra
        async with self.db.begin() as conn:
            result = await conn.execute(insert(hits).values(**row))
            return int(result.inserted_primary_key[0])

    async def events(self) -> list[Any]:
        async with self.db.connect() as conn:
            return list(await conn.execute(select(events).order_by(events.c.id)))


_emails = itertools.count()


async def _add(conn: AsyncConnection, table: Table, **values: Any) -> int:
    return int((await conn.execute(insert(table).values(**values))).inserted_primary_key[0])


async def create_mail(db: Database) -> Mail:
    """A company, a lead and a message sent at SENT_AT with the LINKS."""
    day_before = SENT_AT - dt.timedelta(days=1)
    email = f"lead{next(_emails)}@example.com"
    async with db.begin() as conn:
        company = await _add(
            conn,
            companies,
            name="Acme",
            plan="essential",
            anonymize_ip=False,
            hit_retention_days=0,
            created_at=day_before,
        )
        lead = await _add(
            conn,
            leads,
            company_id=company,
            email=email,
            score=0,
            status="subscribed",
            created_at=day_before,
        )
        message = await _add(
            conn,
            messages,
            company_id=company,
            lead_id=lead,
            subject="Hello",
            html="<p>hi</p>",
            status="sent",
            created_at=SENT_AT,
            sent_at=SENT_AT,
        )
        await conn.execute(
            insert(message_links),
            [
                {"message_id": message, "link_index": i, "company_id": company, "url": u, "kind": k}
                for i, k, u in LINKS
            ],
        )
    return Mail(db, company, lead, message)


@pytest.fixture
async def mail(db: Database) -> Mail:
    return await create_mail(db)


@pytest.fixture
def mail_factory() -> Callable[[Database], Awaitable[Mail]]:
    return create_mail
