"""Erasing a lead leaves nothing that names them, while their sent mail still answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from spine_helpers import Accounts
from sqlalchemy import JSON, String, Text, insert, select

from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.leads import ensure_referred_lead
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.pipeline import GAP_WAIT_SECONDS, process_batch
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.links import LinkResolver
from mailbeacon.store.schema import events, hits, leads, metadata
from mailbeacon.store.schema_analytics import (
    rollup_campaign_leads,
    rollup_forward_readers,
    rollup_message_events,
)
from mailbeacon.store.schema_automation import automation_jobs, automation_runs, webhook_deliveries

EMAIL = "erin.erased@example.com"


def _names_lead(table: str, column: str) -> bool:
    return column == "lead_id" or column.endswith("_lead_id") or (table, column) == ("leads", "id")


async def traces(db: Database, lead_id: int) -> list[str]:
    """Every cell of every table that holds the lead's id (as a lead) or their address."""
    found = []
    async with db.connect() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if _names_lead(table.name, column.name) and value == lead_id:
                        found.append(f"{table.name}.{column.name}")
                    text_like = isinstance(column.type, String | Text | JSON)
                    if text_like and value is not None and EMAIL in str(value).lower():
                        found.append(f"{table.name}.{column.name} (address)")
    return found


async def _add(conn: Any, table: Any, **values: Any) -> int:
    return int((await conn.execute(insert(table).values(**values))).inserted_primary_key[0])


async def test_delete_erases_everything_and_old_mail_still_answers(
    api: httpx.AsyncClient, accounts: Accounts, db: Database, settings: Settings
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    lead = (
        await api.post(
            "/api/v1/leads",
            json={"email": EMAIL.upper(), "first_name": "Erin", "last_name": "Erased"},
            headers=admin.auth,
        )
    ).json()
    await api.patch(
        f"/api/v1/leads/{lead['id']}", json={"fields": {"company": "Erco"}}, headers=admin.auth
    )
    lst = (await api.post("/api/v1/lists", json={"name": "L"}, headers=admin.auth)).json()
    await api.post(
        f"/api/v1/lists/{lst['id']}/leads", json={"lead_ids": [lead["id"]]}, headers=admin.auth
    )
    html = (
        '<p>Hi {{first_name}} of {{company}}</p><a href="https://example.com/offer">offer</a>'
        '<a href="https://example.com/me?e={{email}}">me</a>'
    )
    msg = await api.post(
        "/api/v1/messages",
        json={"lead_id": lead["id"], "subject": "For {{first_name}}", "html": html, "send": False},
        headers=admin.auth,
    )
    assert msg.status_code == 201, msg.text
    message = msg.json()
    offer = next(link for link in message["links"] if link["url"] == "https://example.com/offer")
    personal = next(link for link in message["links"] if EMAIL in link["url"])
    friend = (
        await api.post("/api/v1/leads", json={"email": "friend@example.com"}, headers=admin.auth)
    ).json()
    at = now()
    async with db.begin() as conn:
        await conn.execute(
            leads.update().where(leads.c.id == friend["id"]).values(referred_by_lead_id=lead["id"])
        )
        hit = await _add(
            conn, hits, at=at, kind="open", company_id=company, message_id=message["id"],
            lead_id=lead["id"], ip="192.0.2.1", user_agent="Mozilla", method="GET",
        )  # fmt: skip
        await _add(
            conn, events, hit_id=hit, type="open", at=at, company_id=company,
            message_id=message["id"], lead_id=lead["id"], verdict="human", reason="r",
            inferred=False, forwarded=False,
        )  # fmt: skip
        await _add(
            conn, rollup_campaign_leads, campaign_id=0, lead_id=lead["id"], company_id=company,
            any_open=True, human_open=True, inferred_open=False, human_click=False,
            unsubscribed=False,
        )  # fmt: skip
        await _add(
            conn, rollup_forward_readers, campaign_id=0, message_id=message["id"],
            reader="r1", company_id=company,
        )  # fmt: skip
        await _add(
            conn, rollup_message_events, message_id=message["id"], type="click",
            verdict="human", inferred=False, forwarded=False, client="", link_index=1,
            campaign_id=0, lead_id=lead["id"], company_id=company, url=personal["url"], n=1,
            first_at=at, last_at=at, reason="",
        )  # fmt: skip
        run = await _add(
            conn, automation_runs, rule_id=1, company_id=company, lead_id=lead["id"], key="once",
            trigger="{}", created_at=at,
        )  # fmt: skip
        job = await _add(
            conn, automation_jobs, run_id=run, action_index=0, rule_id=1, company_id=company,
            lead_id=lead["id"], kind="webhook", action="{}", status="done", due_at=at,
            attempts=1, created_at=at,
        )  # fmt: skip
        await _add(
            conn, webhook_deliveries, job_id=job, rule_id=1, company_id=company, attempt=1,
            url="https://hooks.example.com/", ok=True, duration_ms=1, final=True, at=at,
        )  # fmt: skip
    assert len(await traces(db, lead["id"])) > 10  # the scan sees them before

    r = await api.delete(f"/api/v1/leads/{lead['id']}", headers=admin.auth)
    assert r.status_code == 204
    assert await traces(db, lead["id"]) == []
    assert (await api.get(f"/api/v1/leads/{lead['id']}", headers=admin.auth)).status_code == 404
    assert (await api.get(f"/api/v1/leads?email={EMAIL}", headers=admin.auth)).json() == []
    assert (await api.delete(f"/api/v1/leads/{lead['id']}", headers=admin.auth)).status_code == 404
    everyone = (await api.get("/api/v1/leads", headers=admin.auth)).json()
    assert [x["email"] for x in everyone] == ["friend@example.com"]  # no placeholder shows
    assert (await api.get("/api/v1/lists", headers=admin.auth)).json()[0]["lead_count"] == 0

    # Their mail still answers: the link resolves; the one that carried them does not.
    links = LinkResolver(db)
    found = await links(company, message["id"], offer["index"])
    assert found is not None and found.url == "https://example.com/offer"
    assert await links(company, message["id"], personal["index"]) is None

    # A new hit on their old mail records nothing: enrich drops it.
    async with db.begin() as conn:
        await _add(
            conn, hits, at=now(), kind="open", company_id=company, message_id=message["id"],
            lead_id=lead["id"], ip="192.0.2.9", user_agent="Mozilla", method="GET",
        )  # fmt: skip
    # (later than the gap wait: the first hit's id is gone, on PostgreSQL a gap)
    later = now() + dt.timedelta(seconds=GAP_WAIT_SECONDS + 1)
    assert await process_batch(db, settings, Locator(None), at_now=later) == 1
    assert await traces(db, lead["id"]) == []
    async with db.connect() as conn:
        assert (await conn.execute(select(events.c.id))).all() == []

    # A forward to a friend from it creates no lead (the edge answers "unavailable").
    with pytest.raises(NotFound):
        async with db.begin() as conn:
            await ensure_referred_lead(conn, company, "pal@example.com", "Pal", lead["id"])
    everyone = (await api.get("/api/v1/leads", headers=admin.auth)).json()
    assert [x["email"] for x in everyone] == ["friend@example.com"]


async def test_erasing_is_for_the_leads_one_may_see(
    api: httpx.AsyncClient, accounts: Accounts
) -> None:
    company = await accounts.company("ultimate")
    admin = await accounts.user(company)
    seller = await accounts.user(company, "salesperson")
    lead = (await api.post("/api/v1/leads", json={"email": EMAIL}, headers=admin.auth)).json()
    assert (await api.delete(f"/api/v1/leads/{lead['id']}", headers=seller.auth)).status_code == 404
    other = await accounts.user(await accounts.company("ultimate", "Other"))
    assert (await api.delete(f"/api/v1/leads/{lead['id']}", headers=other.auth)).status_code == 404
    assert (await api.get(f"/api/v1/leads/{lead['id']}", headers=admin.auth)).status_code == 200
