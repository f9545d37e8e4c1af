"""The event consumer: read events after cursor 'automation', fire matching rules.

One batch is one transaction: the runs and jobs it fires, the points the company's
scoring model gives (`automation.scoring`) and the cursor advance commit together, so
after a crash the batch is simply read again and nothing fires twice.
The cursor moves by compare-and-set; if another process moved it (a lease that lapsed
during a long pause), this batch rolls back instead of firing a second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.firing import CompiledRule, Firing, record
from mailbeacon.automation.rules import RULES_VERSION
from mailbeacon.automation.scoring import apply_scoring
from mailbeacon.automation.triggers import (
    ENGAGED_VERDICTS,
    MACHINE_VERDICTS,
    Event,
    fits,
    trigger_kind,
)
from mailbeacon.store import now
from mailbeacon.store.render import iso
from mailbeacon.store.schema import events
from mailbeacon.store.schema_automation import automation_rules
from mailbeacon.store.stages import move_cursor, read_cursor

CURSOR = "automation"
# The event as the API shows it (no IP address: webhooks leave the company's hands).
EVENT_COLUMNS = [c for c in events.c if c.name not in ("ip", "hit_id", "link_index")]


class LostCursor(RuntimeError):
    """Another process advanced the cursor first; this batch must not commit."""


# A company's enabled rules by (trigger type, campaign id or None for any campaign).
Index = dict[tuple[str, int | None], list[CompiledRule]]


FIRED_LIMIT = 500_000  # once-rule firings remembered, at most (then forgotten at once)


class RuleCache:
    """Enabled rules per company, indexed for the hot loop, reloaded when rules change.

    It also remembers which once-rules have fired for which leads (``rule id << 32 |
    lead id``), so repeated engagement by a lead skips the write ON CONFLICT would refuse.
    A key is remembered only after the transaction that wrote it, or found it written,
    has committed (`committed`): a batch that rolls back leaves nothing behind. Runs are
    never deleted, so a remembered key stays true; forgetting one only costs a write.
    """

    def __init__(self) -> None:
        self.version = -1
        self.by_company: dict[int, Index] = {}
        self.fired: set[int] = set()
        self.staged: list[int] = []

    def committed(self) -> None:
        """The batch's transaction committed: its once-rule firings are in the database."""
        if len(self.fired) + len(self.staged) > FIRED_LIMIT:
            self.fired = set()
        self.fired.update(self.staged)
        self.staged = []

    async def load(self, conn: AsyncConnection, company_ids: set[int]) -> None:
        """Make sure these companies are cached (and the cache is current)."""
        version = await read_cursor(conn, RULES_VERSION)
        if version != self.version:
            self.version, self.by_company = version, {}
        missing = company_ids - self.by_company.keys()
        if not missing:
            return
        for company_id in missing:
            self.by_company[company_id] = {}
        rows = await conn.execute(
            select(automation_rules).where(
                automation_rules.c.company_id.in_(missing), automation_rules.c.enabled
            )
        )
        for row in rows.mappings():
            rule = CompiledRule.of(row)
            key = (rule.trigger.type, rule.trigger.campaign_id)
            self.by_company[rule.company_id].setdefault(key, []).append(rule)

    def candidates(self, ev: Event, kind: str) -> list[CompiledRule]:
        """The rules of the event's kind for its campaign or any campaign (loaded first)."""
        index = self.by_company[ev.company_id]
        found = list(index.get((kind, None), ()))
        if ev.campaign_id is not None:
            found += index.get((kind, ev.campaign_id), ())
        return [rule for rule in found if fits(rule.trigger, ev)]


def event_payload(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["at"] = iso(out["at"])
    out["inferred"], out["forwarded"] = bool(out["inferred"]), bool(out["forwarded"])
    return out


async def consume_batch(conn: AsyncConnection, cache: RuleCache, limit: int) -> tuple[int, int]:
    """Fire rules for the next events; returns (events read, jobs due now)."""
    cache.staged = []
    position = await read_cursor(conn, CURSOR)
    rows = (
        (
            await conn.execute(
                select(*EVENT_COLUMNS)
                .where(events.c.id > position)
                .order_by(events.c.id)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return 0, 0
    await cache.load(conn, {row["company_id"] for row in rows})
    firings = []
    fired, staged = cache.fired, cache.staged
    for row in rows:
        ev = Event.of(row)
        kind = trigger_kind(ev)
        rules = cache.candidates(ev, kind) if kind is not None else ()
        payload = None
        for rule in rules:
            once = None if rule.repeat else rule.id << 32 | ev.lead_id
            if once in fired:
                continue
            if rule.trigger.min_opens > 1 and not await _enough_opens(conn, rule, ev):
                continue
            if payload is None:  # once per event, whatever it fires
                payload = json.dumps(event_payload(row))
            firings.append(Firing(rule, ev.lead_id, f"event:{ev.id}", ev.id, payload, row["at"]))
            if once is not None:
                staged.append(once)
    due = await record(conn, firings)
    await apply_scoring(conn, rows, now())  # the company's scoring model, in this batch
    if not await move_cursor(conn, CURSOR, position, int(rows[-1]["id"])):
        raise LostCursor(f"cursor {CURSOR} moved by another process")
    return len(rows), due


def engaged_opens() -> Any:
    """SQL for 'an open a person made': the lead's own, human/proxy or inferred."""
    return and_(
        events.c.type == "open",
        events.c.forwarded.is_(False),
        events.c.verdict.not_in(MACHINE_VERDICTS),
        or_(events.c.verdict.in_(ENGAGED_VERDICTS), events.c.inferred.is_(True)),
    )


async def _enough_opens(conn: AsyncConnection, rule: CompiledRule, ev: Event) -> bool:
    """min_opens: has the lead now opened that often (this open included)?"""
    query = select(func.count()).where(
        events.c.company_id == ev.company_id,
        events.c.lead_id == ev.lead_id,
        events.c.id <= ev.id,
        engaged_opens(),
    )
    if rule.trigger.campaign_id is not None:
        query = query.where(events.c.campaign_id == rule.trigger.campaign_id)
    return int((await conn.execute(query)).scalar_one()) >= rule.trigger.min_opens
