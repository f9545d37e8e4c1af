"""not_opened: find sent messages whose window closed with no open by a person.

The deadlines are durable without a row each: a message's deadline is its `sent_at`
plus the rule's `within_seconds`, both already in the database. Each rule keeps a
watermark (sent_at, message id) of the messages it has checked; a scan takes the
messages past it whose deadline is `grace` seconds gone (so enrichment has had time to
write the opens made just before it), fires for the unopened ones, and moves the
watermark, all in one transaction.

A rule with `"privacy_protected": "exclude"` also leaves out the messages whose only
sign before the deadline is Apple's privacy prefetch: Mail Privacy Protection fetches
the pixel whether or not the reader opens, so such a lead is not known to be silent.
Mail sent without a pixel (`messages.track_opens` false) is never checked at all.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.consumer import engaged_opens
from mailbeacon.automation.firing import CompiledRule, Firing, record
from mailbeacon.store import now
from mailbeacon.store.render import iso
from mailbeacon.store.schema import events, leads, messages
from mailbeacon.store.schema_automation import automation_rules

BATCH = 1000


async def scan_deadlines(conn: AsyncConnection, grace: float) -> int:
    """Check every enabled not_opened rule; returns how many jobs are due now."""
    rows = await conn.execute(select(automation_rules).where(automation_rules.c.enabled))
    due = 0
    for row in rows.mappings().all():
        if row["trigger"].get("type") == "not_opened":
            due += await _scan_rule(conn, row, grace)
    return due


async def _scan_rule(conn: AsyncConnection, row: Any, grace: float) -> int:
    rule = CompiledRule.of(row)
    within = dt.timedelta(seconds=rule.trigger.within_seconds or 0)
    cutoff = now() - within - dt.timedelta(seconds=grace)
    after_at = row["scan_sent_at"] or (row["created_at"] - within)
    after_id = row["scan_message_id"] or 0
    query = (
        select(messages.c.id, messages.c.lead_id, messages.c.campaign_id, messages.c.sent_at)
        .where(
            messages.c.company_id == rule.company_id,
            messages.c.status == "sent",
            # A friend's forwarded copy is not mail the lead asked for: no reminders.
            messages.c.forwarded_from_message_id.is_(None),
            # Mail with no pixel (a lead not tracked, opens off) cannot show an open: its
            # reader is not known to be silent, and is not chased for it.
            messages.c.track_opens.is_(True),
            messages.c.sent_at <= cutoff,
            or_(
                messages.c.sent_at > after_at,
                and_(messages.c.sent_at == after_at, messages.c.id > after_id),
            ),
        )
        .order_by(messages.c.sent_at, messages.c.id)
        .limit(BATCH)
    )
    if rule.trigger.campaign_id is not None:
        query = query.where(messages.c.campaign_id == rule.trigger.campaign_id)
    sent = (await conn.execute(query)).mappings().all()
    if not sent:
        return 0
    silent = await _unopened(conn, sent, within)
    if rule.trigger.privacy_protected == "exclude":
        silent -= await _prefetched(conn, silent, {m["id"]: m["sent_at"] + within for m in sent})
    firings = [
        Firing(
            rule,
            m["lead_id"],
            f"message:{m['id']}",
            None,
            json.dumps(
                {
                    "type": "not_opened",
                    "message_id": m["id"],
                    "lead_id": m["lead_id"],
                    "campaign_id": m["campaign_id"],
                    "sent_at": iso(m["sent_at"]),
                    "deadline_at": iso(m["sent_at"] + within),
                }
            ),
            m["sent_at"] + within,
        )
        for m in sent
        if m["id"] in silent
    ]
    due = await record(conn, firings)
    last = sent[-1]
    await conn.execute(
        update(automation_rules)
        .where(automation_rules.c.id == rule.id)
        .values(scan_sent_at=last["sent_at"], scan_message_id=last["id"])
    )
    return due


async def _prefetched(
    conn: AsyncConnection, ids: set[int], deadline: dict[int, dt.datetime]
) -> set[int]:
    """Of these messages, those Apple's privacy proxy prefetched before their deadline."""
    if not ids:
        return set()
    rows = await conn.execute(
        select(events.c.message_id, events.c.at).where(
            events.c.message_id.in_(ids),
            events.c.type == "open",
            events.c.verdict == "prefetch",
            events.c.forwarded.is_(False),
        )
    )
    return {mid for mid, at in rows if at <= deadline[mid]}


async def _unopened(conn: AsyncConnection, sent: Any, within: dt.timedelta) -> set[int]:
    """The messages with no open by a person before their deadline, to subscribed leads."""
    ids = [m["id"] for m in sent]
    deadline = {m["id"]: m["sent_at"] + within for m in sent}
    opens = await conn.execute(
        select(events.c.message_id, events.c.at).where(
            events.c.message_id.in_(ids), engaged_opens()
        )
    )
    opened = {mid for mid, at in opens if at <= deadline[mid]}
    subscribed = set(
        (
            await conn.execute(
                select(leads.c.id).where(
                    leads.c.id.in_({m["lead_id"] for m in sent}), leads.c.status == "subscribed"
                )
            )
        ).scalars()
    )
    return {m["id"] for m in sent if m["id"] not in opened and m["lead_id"] in subscribed}
