"""Claiming due jobs so each runs once, with any number of runner processes.

A claim is an ``UPDATE ... WHERE status = <expected> RETURNING id``: only the rows it
returns belong to this runner, whatever another process claimed in between. On
PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED`` so runners take
different jobs instead of queueing on each other's locks; SQLite has one writer at a
time, so the same UPDATE is already exclusive there.

Local jobs (score, lists, owner) run inside the claiming transaction and are marked
done in it: exactly once. Remote jobs (email, webhook) are marked running with a lock
that expires; a runner killed mid-job leaves it to be reclaimed when the lock lapses.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.model import LOCAL_ACTIONS
from mailbeacon.store import now
from mailbeacon.store.schema_automation import automation_jobs, automation_rules, automation_runs

J = automation_jobs
_FIELDS = [
    *J.c,
    automation_rules.c.enabled.label("rule_enabled"),
    automation_rules.c.name.label("rule_name"),
    automation_runs.c.trigger.label("trigger"),
]


def _candidates(local: bool, at: dt.datetime, limit: int, is_pg: bool) -> Any:
    pending = and_(J.c.status == "pending", J.c.due_at <= at)
    if local:
        where = and_(pending, J.c.kind.in_(LOCAL_ACTIONS))
    else:
        lapsed = and_(J.c.status == "running", J.c.locked_until < at)
        where = and_(J.c.kind.not_in(LOCAL_ACTIONS), or_(pending, lapsed))
    query = (
        select(*_FIELDS)
        .join(automation_runs, automation_runs.c.id == J.c.run_id)
        .outerjoin(automation_rules, automation_rules.c.id == J.c.rule_id)
        .where(where)
        .order_by(J.c.due_at, J.c.id)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True, of=J) if is_pg else query


async def claim(
    conn: AsyncConnection, holder: str, *, local: bool, limit: int, lock_seconds: float
) -> list[dict[str, Any]]:
    """Take up to `limit` due jobs; returns them as dicts, `attempts` already counted."""
    at = now()
    rows = (
        (await conn.execute(_candidates(local, at, limit, conn.dialect.name == "postgresql")))
        .mappings()
        .all()
    )
    if not rows:
        return []
    expected = {r["id"]: (r["status"], r["locked_until"]) for r in rows}
    taken = await conn.execute(
        update(J)
        .where(J.c.id.in_(list(expected)))
        .where(or_(J.c.status == "pending", and_(J.c.status == "running", J.c.locked_until < at)))
        .values(
            status="running",
            locked_by=holder,
            locked_until=at + dt.timedelta(seconds=lock_seconds),
            attempts=J.c.attempts + 1,
            started_at=at,
        )
        .returning(J.c.id)
    )
    mine = set(taken.scalars())
    jobs = []
    for r in rows:
        if r["id"] in mine:
            job = dict(r)
            job["action"], job["trigger"] = json.loads(r["action"]), json.loads(r["trigger"])
            job["recovered"] = r["status"] == "running"  # its last runner died mid-job
            job["attempts"] += 1
            job["started_at"] = at
            jobs.append(job)
    return jobs


async def finish_many(conn: AsyncConnection, outcomes: list[dict[str, Any]]) -> None:
    """Record outcomes: dicts of id, status, result, due_at (later, to retry)."""
    if not outcomes:
        return
    at = now()
    await conn.execute(
        update(J)
        .where(J.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            result=bindparam("b_result"),
            due_at=bindparam("b_due"),
            finished_at=bindparam("b_finished"),
            locked_until=None,
        ),
        [
            {
                "b_id": o["id"],
                "b_status": o["status"],
                "b_result": (o.get("result") or "")[:2000],
                "b_due": o["due_at"],
                "b_finished": None if o["status"] == "pending" else at,
            }
            for o in outcomes
        ],
    )
