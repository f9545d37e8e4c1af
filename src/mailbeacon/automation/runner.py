"""The job runner: takes due jobs and runs their actions.

Local jobs are claimed, run and marked done in one transaction, a batch at a time.
Remote jobs (send_email, notify_owner, webhook) are claimed, then run concurrently up
to a limit, each finished in its own small transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from mailbeacon.automation import actions, webhooks
from mailbeacon.automation.actions import Context, Outcome
from mailbeacon.automation.jobs import claim, finish_many
from mailbeacon.store import now

log = logging.getLogger("mailbeacon.automation")


def _outcome_row(job: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    due = job["due_at"]
    if outcome.retry_in is not None:
        due = now() + dt.timedelta(seconds=outcome.retry_in)
    return {"id": job["id"], "status": outcome.status, "result": outcome.result, "due_at": due}


def _inactive(job: dict[str, Any]) -> Outcome | None:
    """A job whose rule was deleted or disabled since it fired does nothing."""
    if job["rule_enabled"] is None:
        return Outcome("cancelled", "rule deleted")
    if not job["rule_enabled"]:
        return Outcome("cancelled", "rule disabled")
    return None


async def run_local(ctx: Context, holder: str) -> int:
    """One batch of local jobs, exactly once each; returns how many were taken."""
    s = ctx.settings
    async with ctx.db.begin() as conn:
        jobs = await claim(
            conn,
            holder,
            local=True,
            limit=s.automation_job_batch,
            lock_seconds=s.automation_lock_seconds,
        )
        live = [job for job in jobs if _inactive(job) is None]
        outcomes = {job["id"]: o for job in jobs if (o := _inactive(job)) is not None}
        try:
            if live:
                async with conn.begin_nested():
                    outcomes.update(await actions.apply_local_batch(conn, live))
        except Exception:
            # Something in the batch broke (a lead deleted under us): redo it job by job,
            # each in a savepoint, so only the broken job fails.
            outcomes.update({job["id"]: await _one_local(conn, job) for job in live})
        rows = [_outcome_row(job, outcomes[job["id"]]) for job in jobs]
        await finish_many(conn, rows)
    return len(jobs)


async def _one_local(conn: Any, job: dict[str, Any]) -> Outcome:
    try:
        async with conn.begin_nested():
            return await actions.apply_local(conn, job)
    except Exception as e:
        return Outcome("failed", f"{type(e).__name__}: {e}")


async def run_remote_job(ctx: Context, job: dict[str, Any]) -> None:
    outcome = _inactive(job)
    try:
        if outcome is not None:
            pass
        elif job["kind"] == "send_email":
            outcome = await actions.send_email(ctx, job)
        elif job["kind"] == "notify_owner":
            outcome = await actions.notify_owner(ctx, job)
        elif job["kind"] == "webhook":
            outcome = await webhooks.deliver(
                ctx,
                job,
                ctx.settings.automation_webhook_attempts,
                ctx.settings.automation_webhook_backoff,
            )
        else:
            outcome = Outcome("failed", f"unknown action {job['kind']!r}")
    except Exception as e:  # a bug or an outage: recorded on the job, the runner goes on
        log.exception("automation job %s failed", job["id"])
        outcome = Outcome("failed", f"{type(e).__name__}: {e}")
    async with ctx.db.begin() as conn:
        await finish_many(conn, [_outcome_row(job, outcome)])


class RemotePool:
    """Remote jobs in flight, at most `automation_remote_concurrency` at once."""

    def __init__(self, ctx: Context, holder: str) -> None:
        self.ctx, self.holder = ctx, holder
        self.tasks: set[asyncio.Task[None]] = set()

    async def fill(self) -> int:
        s = self.ctx.settings
        room = s.automation_remote_concurrency - len(self.tasks)
        if room <= 0:
            return 0
        async with self.ctx.db.begin() as conn:
            jobs = await claim(
                conn, self.holder, local=False, limit=room, lock_seconds=s.automation_lock_seconds
            )
        for job in jobs:
            task = asyncio.create_task(run_remote_job(self.ctx, job))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(jobs)

    async def drain(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)
