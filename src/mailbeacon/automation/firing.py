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

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.actions import apply_local_batch
from mailbeacon.automation.model import LOCAL_ACTIONS
from mailbeacon.automation.sqlutil import db_time, insert_rows
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


RUN_COLUMNS = ("rule_id", "company_id", "lead_id", "key", "event_id", "trigger", "created_at")
JOB_COLUMNS = (
    "run_id",
    "action_index",
    "rule_id",
    "company_id",
    "lead_id",
    "kind",
    "action",
    "status",
    "due_at",
    "attempts",
    "created_at",
    "result",
    "started_at",
    "finished_at",
)
_STATUS, _ATTEMPTS, _RESULT, _STARTED, _FINISHED = 7, 9, 11, 12, 13  # JOB_COLUMNS indexes


async def record(conn: AsyncConnection, firings: Iterable[Firing]) -> int:
    """Write runs and jobs for the firings that are new; returns how many jobs are due now.

    Runs are inserted ON CONFLICT DO NOTHING: a lead a once-rule already fired for is
    refused by the unique key, with no look-up first. The runs this call created are
    read back as the ids past the largest one before it (RETURNING in parameter order
    would make SQLAlchemy insert row by row on SQLite). Rows go to the driver as tuples
    (`insert_rows`): a batch is a few statements, and little Python between them.
    """
    fresh: dict[tuple[int, int, str], Firing] = {}
    for f in firings:
        fresh.setdefault(f.key, f)
    if not fresh:
        return 0
    created = now()
    stamp = db_time(conn, created)
    runs = automation_runs.c
    before = (await conn.execute(select(func.max(runs.id)))).scalar() or 0
    await insert_rows(
        conn,
        automation_runs,
        RUN_COLUMNS,
        [
            (f.rule.id, f.rule.company_id, f.lead_id, key[2], f.event_id, f.payload, stamp)
            for key, f in fresh.items()
        ],
        skip_conflicts=True,
    )
    made = await conn.execute(
        select(runs.id, runs.rule_id, runs.lead_id, runs.key).where(runs.id > before)
    )
    jobs: list[list[Any]] = []
    inline: list[dict[str, Any]] = []  # immediate local actions; "id": their index in jobs
    due_now = 0
    for run_id, rule_id, lead_id, key in made:
        firing = fresh.get((rule_id, lead_id, key))
        if firing is None:  # not ours: another process's run committed meanwhile
            continue
        rule = firing.rule
        for i, action in enumerate(rule.actions):
            kind = action["type"]
            delay = action.get("delay_seconds")
            # Delays count from the event, not from when we read it: a lagging pipeline
            # does not postpone follow-ups further. Never due before the job exists.
            due = max(firing.at + dt.timedelta(seconds=int(delay)), created) if delay else created
            due_now += due <= created
            if kind in LOCAL_ACTIONS and due <= created:
                inline.append(
                    {
                        "id": len(jobs),
                        "kind": kind,
                        "action": action,
                        "company_id": rule.company_id,
                        "lead_id": lead_id,
                    }
                )
            jobs.append(
                [
                    run_id,
                    i,
                    rule.id,
                    rule.company_id,
                    lead_id,
                    kind,
                    rule.action_texts[i],
                    "pending",
                    stamp if due == created else db_time(conn, due),
                    0,
                    stamp,
                    None,
                    None,
                    None,
                ]
            )
    due_now -= await _run_inline(conn, inline, jobs)
    await insert_rows(conn, automation_jobs, JOB_COLUMNS, list(map(tuple, jobs)))
    return due_now


async def _run_inline(conn: AsyncConnection, inline: list[dict[str, Any]], jobs: list[Any]) -> int:
    """Run immediate local actions (score, lists) in this transaction and write their
    jobs as done: exactly once, committed with the cursor, no wait for the runner.
    If the batch fails (a list deleted meanwhile), the jobs stay pending instead and
    the runner takes them one by one. Returns how many it finished (no longer pending)."""
    if not inline:
        return 0
    try:
        async with conn.begin_nested():
            outcomes = await apply_local_batch(conn, inline)
    except Exception:
        return 0
    at = db_time(conn, now())
    for job in inline:
        row, outcome = jobs[job["id"]], outcomes[job["id"]]
        row[_STATUS], row[_RESULT], row[_ATTEMPTS] = outcome.status, outcome.result, 1
        row[_STARTED] = row[_FINISHED] = at
    return sum(1 for job in inline if jobs[job["id"]][_STATUS] != "pending")
