"""A campaign with a known mix of traffic, for tests (the dashboard pages and screenshots too).

Rows are inserted directly (company, leads, campaign, messages, events), the way enrich
would leave them, so analytics can be exercised without the edge or the classifier.
`KNOWN_MIX` below is what every lead did; tests/analytics states the report it must give.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import create_user
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns, events, leads, messages

# Monday 4 March 2024, 09:00 UTC: before either side of the Atlantic moves its clocks.
SENT_AT = dt.datetime(2024, 3, 4, 9, 0, 0)
LINKS = ("https://example.com/pricing", "https://example.com/blog")

# What enrich leaves on a reader's events: `device` is the type, `device_model` what the
# agent names; Gmail's proxy hides the reader's device (and place) entirely.
APPLE = {
    "client": "Apple Mail",
    "device": "mobile",
    "device_model": "iPhone",
    "os": "iOS",
    "country": "FR",
}
GMAIL = {"client": "Gmail", "device": None, "device_model": None, "os": None, "country": None}
OUTLOOK = {"client": "Outlook", "device": "desktop", "os": "Windows", "country": "GB"}
TBIRD = {"client": "Thunderbird", "device": "desktop", "os": "Linux", "country": "DE"}
BROWSER = {"client": "Chrome", "device": "desktop", "os": "Windows", "country": "IN"}


def ev(minutes: int, type_: str, verdict: str, reason: str = "", **kw: Any) -> dict[str, Any]:
    return (
        {"at": SENT_AT + dt.timedelta(minutes=minutes), "type": type_, "verdict": verdict}
        | {"reason": reason}
        | kw
    )


# lead key -> (timezone, events). "friend" reads a forward-to-a-friend copy of l5's mail.
KNOWN_MIX: dict[str, tuple[str | None, list[dict[str, Any]]]] = {
    "l1": (
        "Europe/Paris",
        [
            ev(60, "open", "human", **APPLE),
            ev(120, "open", "human", **APPLE),
            ev(130, "click", "human", link_index=0, url=LINKS[0], **BROWSER),
        ],
    ),
    "l2": (
        "America/New_York",
        [
            ev(5, "open", "prefetch", "Apple Mail Privacy Protection prefetch", **APPLE),
            ev(300, "unsubscribe", "human"),
        ],
    ),
    "l3": (None, [ev(180, "open", "proxy", "Gmail image proxy", **GMAIL)]),
    "l4": (
        "Asia/Kolkata",
        [
            ev(1, "open", "scanner", "Microsoft Defender link scan", ip="40.94.1.1"),
            ev(1, "click", "scanner", "Microsoft Defender link scan", link_index=1, url=LINKS[1]),
            ev(240, "click", "human", link_index=1, url=LINKS[1], **BROWSER),
            ev(240, "open", "human", "inferred from a click", inferred=True, **BROWSER),
        ],
    ),
    "l5": (
        "UTC",
        [
            ev(60, "open", "human", ip="198.51.100.7", **OUTLOOK),
            ev(200, "forward", "human"),
            ev(360, "open", "human", "another reader", forwarded=True, ip="203.0.113.9", **TBIRD),
            ev(420, "open", "human", "another reader", forwarded=True, ip="203.0.113.9", **TBIRD),
        ],
    ),
    "l6": (
        "UTC",
        [
            ev(2, "open", "bot", "python-requests"),
            ev(2, "click", "bot", "python-requests", link_index=0, url=LINKS[0]),
        ],
    ),
    "l7": ("UTC", [ev(90, "click", "human", link_index=0, url=LINKS[0], **BROWSER)]),
    "l8": ("UTC", [ev(30, "unsubscribe", "human")]),
    "friend": ("Europe/Berlin", [ev(480, "open", "human", **APPLE)]),
}


@dataclass
class World:
    company_id: int
    campaign_id: int
    leads: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


async def add_event(conn: AsyncConnection, world: World, lead: str, **row: Any) -> int:
    values = {
        "company_id": world.company_id,
        "campaign_id": world.campaign_id,
        "lead_id": world.leads[lead],
        "message_id": world.messages[lead],
        "inferred": False,
        "forwarded": False,
        "reason": "",
    } | row
    result = await conn.execute(insert(events).values(**values).returning(events.c.id))
    return int(result.scalar_one())


async def known_mix(
    conn: AsyncConnection, password: str | None = None, name: str = "Spring launch"
) -> World:
    """Insert the company, users, leads, campaign, messages and events of `KNOWN_MIX`."""
    company_id = await create_company(conn, f"Acme {name}", "essential")
    world = World(company_id=company_id, campaign_id=0)
    for role in ("marketing_manager", "salesperson"):
        world.users[role] = await create_user(
            conn,
            company_id=company_id,
            email=f"{role}.{company_id}@acme.example",
            role=role,
            password=password,
        )
    result = await conn.execute(
        insert(campaigns)
        .values(
            company_id=company_id,
            name=name,
            subject="Our spring launch",
            html="<p>Hello</p>",
            tags=["launch", "pricing"],
            status="sent",
            sent_count=0,
            created_at=SENT_AT,
            sent_at=SENT_AT,
        )
        .returning(campaigns.c.id)
    )
    world.campaign_id = int(result.scalar_one())
    for key, (tz, _) in KNOWN_MIX.items():
        lead = await conn.execute(
            insert(leads)
            .values(
                company_id=company_id,
                email=f"{key}.{company_id}@lead.example",
                first_name=key.upper(),
                timezone=tz,
                score=0,
                status="subscribed",
                created_at=now(),
            )
            .returning(leads.c.id)
        )
        world.leads[key] = int(lead.scalar_one())
        msg = await conn.execute(
            insert(messages)
            .values(
                company_id=company_id,
                lead_id=world.leads[key],
                campaign_id=world.campaign_id,
                forwarded_from_message_id=world.messages["l5"] if key == "friend" else None,
                subject="Our spring launch",
                html="<p>Hello</p>",
                status="sent",
                created_at=SENT_AT,
                sent_at=SENT_AT,
            )
            .returning(messages.c.id)
        )
        world.messages[key] = int(msg.scalar_one())
    for key, (_, rows) in KNOWN_MIX.items():
        for row in rows:
            await add_event(conn, world, key, **row)
    return world
