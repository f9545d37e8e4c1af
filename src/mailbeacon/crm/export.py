"""Exporting a lead: one JSON document with everything held about them (GDPR art. 15).

Every table that names the lead contributes a section, so the answer to "what do you
have on me?" is the data itself, not a summary: the lead row (score, status, custom
fields, when they unsubscribed), their list memberships, every message sent to them with
its links, every raw hit (addresses and user agents as recorded), every event, what the
campaign reports hold about them, the automation runs, jobs and webhook deliveries made
about them, and the earlier exports and erasures the audit log records for their
address. A friend's forwarded copy is the friend's, and is left out.

Exporting is itself recorded in the audit log, in the same transaction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm import audit
from mailbeacon.crm.leads import get_lead
from mailbeacon.crm.users import Principal
from mailbeacon.store import now
from mailbeacon.store.render import iso, jsonable
from mailbeacon.store.schema import (
    events,
    hits,
    leads,
    list_members,
    lists,
    message_links,
    messages,
)
from mailbeacon.store.schema_analytics import rollup_campaign_leads
from mailbeacon.store.schema_automation import (
    automation_jobs,
    automation_runs,
    webhook_deliveries,
)

FORMAT = "mailbeacon.lead-export/1"
# The sections of a document, in order: a test holds the export to every one of them.
SECTIONS = (
    "lead",
    "lists",
    "messages",
    "hits",
    "events",
    "unsubscribes",
    "campaign_activity",
    "automation_runs",
    "automation_jobs",
    "webhook_deliveries",
    "audit",
)
# Columns stored as JSON text: exported as the JSON they hold.
_JSON_TEXT = {"trigger", "action", "result"}


def _rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = jsonable(row)
        for key in _JSON_TEXT & item.keys():
            if isinstance(item[key], str):
                # Plain text (a job's result can be a message) is kept as it is.
                with contextlib.suppress(ValueError):
                    item[key] = json.loads(item[key])
        out.append(item)
    return out


async def _all(conn: AsyncConnection, query: Select[Any]) -> list[dict[str, Any]]:
    return _rows((await conn.execute(query)).mappings())


def _of(table: Table, company: int, ids: list[int], column: str = "lead_id") -> Select[Any]:
    """The company's rows of `table` whose `column` is one of `ids`, in key order."""
    return (
        select(table)
        .where(table.c.company_id == company, table.c[column].in_(ids))
        .order_by(*table.primary_key.columns)
    )


async def export_lead(
    conn: AsyncConnection, who: Principal, lead_id: int, via: audit.Via = "api"
) -> dict[str, Any]:
    """The document for a lead the caller may see (404 otherwise). Run in a transaction:
    the audit entry is written with it."""
    await get_lead(conn, who, lead_id)  # visibility: another's lead is a 404
    company = who.company_id
    lead = jsonable(
        (await conn.execute(select(leads).where(leads.c.id == lead_id))).mappings().one()
    )
    await audit.record(conn, who, "export", lead, via)
    memberships = await _all(
        conn,
        select(lists.c.id, lists.c.name, list_members.c.added_at)
        .join(lists, lists.c.id == list_members.c.list_id)
        .where(list_members.c.lead_id == lead_id, lists.c.company_id == company)
        .order_by(lists.c.id),
    )
    sent = await _all(conn, _of(messages, company, [lead_id]))
    links: dict[int, list[dict[str, Any]]] = {m["id"]: [] for m in sent}
    for link in await _all(conn, _of(message_links, company, [*links], "message_id")):
        links[link.pop("message_id")].append(link)
    for message in sent:
        message["links"] = [
            {k: v for k, v in link.items() if k != "company_id"} for link in links[message["id"]]
        ]
    their_events = await _all(conn, _of(events, company, [lead_id]))
    jobs = await _all(conn, _of(automation_jobs, company, [lead_id]))
    deliveries = await _all(
        conn, _of(webhook_deliveries, company, [j["id"] for j in jobs], "job_id")
    )
    entries = await audit.entries(conn, company, email=str(lead["email"]), limit=audit.MAX_ENTRIES)
    return {
        "format": FORMAT,
        "exported_at": iso(now()),
        "lead": lead,
        "lists": memberships,
        "messages": sent,
        "hits": await _all(conn, _of(hits, company, [lead_id])),
        "events": their_events,
        "unsubscribes": {
            "status": lead["status"],
            "unsubscribed_at": lead["unsubscribed_at"],
            "events": [e for e in their_events if e["type"] == "unsubscribe"],
        },
        "campaign_activity": await _all(conn, _of(rollup_campaign_leads, company, [lead_id])),
        "automation_runs": await _all(conn, _of(automation_runs, company, [lead_id])),
        "automation_jobs": jobs,
        "webhook_deliveries": deliveries,
        "audit": [
            {k: v for k, v in jsonable(e).items() if k not in ("company_id",)} for e in entries
        ],
    }
