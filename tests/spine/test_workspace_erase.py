"""Erasing a lead leaves nothing that names them, while their sent mail still answers."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import httpx
import pytest
from erase_scan import traces
from spine_helpers import Accounts
from sqlalchemy import func, insert, select

from mailbeacon.crm.errors import NotFound
from mailbeacon.crm.leads import ensure_referred_lead
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.pipeline import GAP_WAIT_SECONDS, process_batch
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.links import LinkResolver
from mailbeacon.store.schema import events, hits, lead_imports, leads, messages
from mailbeacon.store.schema_analytics import (
    lead_key,
    rollup_campaign_leads,
    rollup_counts,
    rollup_forward_readers,
    rollup_message_events,
)
from mailbeacon.store.schema_automation import automation_jobs, automation_runs, webhook_deliveries

EMAIL = "erin.erased@example.com"
LAST = "Erasedottir"


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
            json={"email": EMAIL.upper(), "first_name": "Erin", "last_name": LAST},
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
        # The reports' counters: anonymous ones, their count as a forwarder, and the
        # counter of the link whose URL carried their address.
        for dim, key in (
            ("n", "opens_total"), ("forwarder", lead_key(lead["id"])),
            ("link", f"{personal['index']}\t{personal['url']}"),
        ):  # fmt: skip
            await _add(
                conn, rollup_counts, campaign_id=0, dim=dim, key=key, company_id=company, n=1
            )
        # A friend's forwarded copy opens with their note.
        await _add(
            conn, messages, company_id=company, lead_id=friend["id"],
            forwarded_from_message_id=message["id"], subject=f"Erin {LAST} says hi",
            html=f"<p>Erin {LAST} forwarded this email to you and wrote:</p>", status="sent",
            created_at=at,
        )  # fmt: skip
        # A queued CSV import with their line, and a finished one whose rejection names them.
        queued = await _add(
            conn, lead_imports, company_id=company, filename="a.csv", status="queued",
            content=f"email,last_name\r\n{EMAIL},{LAST}\r\nkeep@example.com,K\r\n".encode(),
            created_at=at,
        )  # fmt: skip
        await _add(
            conn, lead_imports, company_id=company, filename="b.csv", status="done",
            rejected=[{"line": 3, "reason": f"{EMAIL} is on line 2 already"}], created_at=at,
        )  # fmt: skip
    before = await traces(db, lead["id"], EMAIL, LAST)
    assert len(before) > 15  # the scan sees them before
    assert {t.split(".")[0] for t in before} >= {
        "hits", "events", "rollup_counts", "lead_imports", "messages", "list_members",
        "automation_runs", "automation_jobs", "rollup_campaign_leads", "leads",
    }  # fmt: skip

    async with db.connect() as conn:
        event_top = await conn.scalar(select(func.max(events.c.id)))
    r = await api.delete(f"/api/v1/leads/{lead['id']}", headers=admin.auth)
    assert r.status_code == 204
    assert await traces(db, lead["id"], EMAIL, LAST) == []
    async with db.connect() as conn:
        counters = (await conn.execute(select(rollup_counts.c.dim, rollup_counts.c.key))).all()
        content = await conn.scalar(
            select(lead_imports.c.content).where(lead_imports.c.id == queued)
        )
    assert counters == [("n", "opens_total")]  # the anonymous count stays
    assert content == b"email,last_name\r\nkeep@example.com,K\r\n"
    [entry] = (await api.get("/api/v1/audit", headers=admin.auth)).json()
    assert {k: entry[k] for k in ("action", "lead_id", "user_id", "via")} == {
        "action": "erase", "lead_id": lead["id"], "user_id": admin.user_id, "via": "api",
    }  # fmt: skip
    assert entry["user_email"].endswith(f"-administrator@c{company}.example.com")
    assert entry["lead_email_sha256"] == hashlib.sha256(EMAIL.encode()).hexdigest()
    by_address = await api.get(f"/api/v1/audit?email={EMAIL.upper()}", headers=admin.auth)
    assert [e["id"] for e in by_address.json()] == [entry["id"]]
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
    # Two: the new one, and the emptied tombstone the erase left of the highest hit.
    assert await process_batch(db, settings, Locator(None), at_now=later) == 2
    assert await traces(db, lead["id"], EMAIL, LAST) == []
    async with db.connect() as conn:
        assert (await conn.execute(select(events.c.id, events.c.company_id))).all() == [
            (event_top, 0)  # the tombstone of the highest event: names no one
        ]
        kept = (await conn.execute(select(hits.c.kind, hits.c.company_id, hits.c.ip))).all()
    assert kept == [("erased", 0, None)]  # the newest hit, emptied: its id stays taken

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
