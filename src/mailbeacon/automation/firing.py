"""Recording that rules fired: runs and their jobs, written in the caller's transaction.

The caller (the event consumer, the deadline scanner) moves its own cursor or
watermark in the same transaction, so a firing is written exactly when the input that
caused it is marked read. Firing twice is impossible by construction: runs are unique
per (rule, lead, key), checked here and enforced by the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.triggers import CompiledTrigger, run_key
from mailbeacon.store import now
from mailbeacon.store.schema_automation import automation_jobs, automation_runs

_CHUNK = 2000  # SQLite allows 32766 bound values per statement


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: int
    company_id: int
    name: str
    repeat: bool
    trigger: CompiledTrigger
    actions: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> CompiledRule:
        return cls(
            id=row["id"],
            company_id=row["company_id"],
            name=row["name"],
            repeat=bool(row["repeat"]),
            trigger=CompiledTrigger.of(row["trigger"]),
            actions=tuple(row["actions"]),
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule fired for a lead because of `trigger_key` (``event:<id>``, ``message:<id>``)."""

    rule: CompiledRule
    lead_id: int
    trigger_key: str
    event_id: int | None
    payload: dict[str, Any]  # what the webhook and the run log show as the event
    at: dt.datetime  # delays count from here

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.rule.id, self.lead_id, run_key(self.rule.repeat, self.trigger_key))


async def _existing(conn: AsyncConnection, keys: set[tuple[int, int, str]]) -> set[Any]:
    found: set[Any] = set()
    ordered = sorted(keys)
    for i in range(0, len(ordered), _CHUNK):
        part = ordered[i : i + _CHUNK]
        rows = await conn.execute(
            select(automation_runs.c.rule_id, automation_runs.c.lead_id, automation_runs.c.key)
            .where(automation_runs.c.rule_id.in_({k[0] for k in part}))
            .where(automation_runs.c.lead_id.in_({k[1] for k in part}))
            .where(automation_runs.c.key.in_({k[2] for k in part}))
        )
        found.update(tuple(r) for r in rows)
    return found & keys


async def record(conn: AsyncConnection, firings: Iterable[Firing]) -> int:
    """Write runs and jobs for the firings that are new; returns how many jobs are due now."""
    fresh: dict[tuple[int, int, str], Firing] = {}
    for f in firings:
        fresh.setdefault(f.key, f)
    if not fresh:
        return 0
    for key in await _existing(conn, set(fresh)):
        del fresh[key]
    if not fresh:
        return 0
    created = now()
    todo = list(fresh.values())
    run_ids = await conn.execute(
        insert(automation_runs).returning(automation_runs.c.id, sort_by_parameter_order=True),
        [
            {
                "rule_id": f.rule.id,
                "company_id": f.rule.company_id,
                "lead_id": f.lead_id,
                "key": f.key[2],
                "event_id": f.event_id,
                "trigger": f.payload,
                "created_at": created,
            }
            for f in todo
        ],
    )
    jobs = [
        _job(f, run_id, i, action, created)
        for f, run_id in zip(todo, run_ids.scalars(), strict=True)
        for i, action in enumerate(f.rule.actions)
    ]
    await conn.execute(insert(automation_jobs), jobs)
    return sum(1 for j in jobs if j["due_at"] <= created)


def _job(
    f: Firing, run_id: int, index: int, action: Mapping[str, Any], created: dt.datetime
) -> dict[str, Any]:
    delay = int(action.get("delay_seconds") or 0)
    # Delays count from the event, not from when we read it: a lagging pipeline does
    # not postpone follow-ups further. Never due before the job exists.
    due = max(f.at + dt.timedelta(seconds=delay), created) if delay else created
    return {
        "run_id": run_id,
        "action_index": index,
        "rule_id": f.rule.id,
        "company_id": f.rule.company_id,
        "lead_id": f.lead_id,
        "kind": action["type"],
        "action": dict(action),
        "status": "pending",
        "due_at": due,
        "attempts": 0,
        "created_at": created,
    }
