"""Recording that rules fired: runs and their jobs, written in the caller's transaction.

The caller (the event consumer, the deadline scanner) moves its own cursor or
watermark in the same transaction, so a firing is written exactly when the input that
caused it is marked read. Firing twice is impossible by construction: runs are unique
per (rule, lead, key) in the database.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.actions import apply_local_batch
from mailbeacon.automation.model import LOCAL_ACTIONS
from mailbeacon.automation.sqlutil import dialect_insert
from mailbeacon.automation.triggers import CompiledTrigger, run_key
from mailbeacon.store import now
from mailbeacon.store.schema_automation import automation_jobs, automation_runs


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: int
    company_id: int
    name: str
    repeat: bool
    trigger: CompiledTrigger
    actions: tuple[Mapping[str, Any], ...]
    action_texts: tuple[str, ...]  # the actions as stored on their jobs

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> CompiledRule:
        return cls(
            id=row["id"],
            company_id=row["company_id"],
            name=row["name"],
            repeat=bool(row["repeat"]),
            trigger=CompiledTrigger.of(row["trigger"]),
            actions=tuple(row["actions"]),
            action_texts=tuple(json.dumps(a) for a in row["actions"]),
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule fired for a lead because of `trigger_key` (``event:<id>``, ``message:<id>``)."""

    rule: CompiledRule
    lead_id: int
    trigger_key: str
    event_id: int | None
    payload: str  # JSON: what the webhook and the run log show as the event
    at: dt.datetime  # delays count from here

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.rule.id, self.lead_id, run_key(self.rule.repeat, self.trigger_key))


async def record(conn: AsyncConnection, firings: Iterable[Firing]) -> int:
    """Write runs and jobs for the firings that are new; returns how many jobs are due now.

    Runs are inserted ON CONFLICT DO NOTHING: a lead a once-rule already fired for is
    refused by the unique key, with no look-up first. The runs this call created are
    read back as the ids past the largest one before it (RETURNING in parameter order
    would make SQLAlchemy insert row by row on SQLite).
    """
    fresh: dict[tuple[int, int, str], Firing] = {}
    for f in firings:
        fresh.setdefault(f.key, f)
    if not fresh:
        return 0
    created = now()
    runs = automation_runs.c
    before = (await conn.execute(select(func.max(runs.id)))).scalar() or 0
    await conn.execute(
        dialect_insert(conn, automation_runs).on_conflict_do_nothing(),
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
            for f in fresh.values()
        ],
    )
    made = await conn.execute(
        select(runs.id, runs.rule_id, runs.lead_id, runs.key).where(runs.id > before)
    )
    jobs: list[dict[str, Any]] = []
    inline: list[tuple[dict[str, Any], Mapping[str, Any]]] = []  # (job, its parsed action)
    for run_id, rule_id, lead_id, key in made:
        firing = fresh.get((rule_id, lead_id, key))
        if firing is None:  # not ours: another process's run committed meanwhile
            continue
        for i, action in enumerate(firing.rule.actions):
            job = _job(firing, run_id, i, created)
            jobs.append(job)
            if job["kind"] in LOCAL_ACTIONS and job["due_at"] <= created:
                inline.append((job, action))
    await _run_inline(conn, inline)
    if jobs:
        await conn.execute(insert(automation_jobs), jobs)
    return sum(1 for j in jobs if j["status"] == "pending" and j["due_at"] <= created)


async def _run_inline(
    conn: AsyncConnection, jobs: list[tuple[dict[str, Any], Mapping[str, Any]]]
) -> None:
    """Run immediate local actions (score, lists) in this transaction and write their
    jobs as done: exactly once, committed with the cursor, no wait for the runner.
    If the batch fails (a list deleted meanwhile), the jobs stay pending instead and
    the runner takes them one by one."""
    if not jobs:
        return
    try:
        async with conn.begin_nested():
            outcomes = await apply_local_batch(
                conn, [{**job, "id": i, "action": action} for i, (job, action) in enumerate(jobs)]
            )
    except Exception:
        return
    at = now()
    for i, (job, _) in enumerate(jobs):
        outcome = outcomes[i]
        job.update(
            status=outcome.status, result=outcome.result, attempts=1, started_at=at, finished_at=at
        )


def _job(f: Firing, run_id: int, index: int, created: dt.datetime) -> dict[str, Any]:
    action = f.rule.actions[index]
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
        "action": f.rule.action_texts[index],
        "status": "pending",
        "due_at": due,
        "attempts": 0,
        "created_at": created,
        # Filled in when the action runs inline (see _run_inline); every row of an
        # executemany needs the same keys.
        "result": None,
        "started_at": None,
        "finished_at": None,
    }
