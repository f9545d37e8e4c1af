"""The `erase-sweep` stage: an erase stays final against work already in flight.

The pipeline's stages read a batch, then write what it means: enrich reads hits and
writes events, rollups read events and write per-lead rows, automation reads events
and writes runs and jobs. A batch read just before an erase commits can write about
the lead just after it. So for `WINDOW` seconds after each erase (the audit log says
which leads, `crm.audit`), this stage deletes again, every `erase_sweep_seconds`, what the
stages write about them (`crm.erase.forget_tracking`), and the webhook deliveries
logged for a job the erase deleted. Deleting twice is harmless; nothing else reads the
audit log's ids. Each sweep also deletes the hit and event tombstones that a newer row
has overtaken (`store.tombstones`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict

from sqlalchemy import delete, select

from mailbeacon.crm.erase import forget_tracking
from mailbeacon.crm.leads import ERASED
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now, tombstones
from mailbeacon.store.schema import audit_log, leads, messages
from mailbeacon.store.schema_automation import automation_jobs, webhook_deliveries

WINDOW = 120.0  # seconds after an erase that it is swept again: longer than any batch


async def sweep(db: Database, at: dt.datetime | None = None) -> int:
    """One sweep of the erasures of the last WINDOW seconds; how many leads it covered."""
    since = (at or now()) - dt.timedelta(seconds=WINDOW)
    async with db.begin() as conn:
        recent = await conn.execute(
            select(audit_log.c.company_id, audit_log.c.lead_id).where(
                audit_log.c.action == "erase", audit_log.c.at >= since
            )
        )
        erased: dict[int, list[int]] = defaultdict(list)
        for company, lead_id in recent.all():
            erased[company].append(lead_id)
        for company, lead_ids in erased.items():
            # An erased lead's mail belongs to the company's placeholder (crm.erase).
            shells = select(leads.c.id).where(
                leads.c.company_id == company, leads.c.status == ERASED
            )
            mail = select(messages.c.id).where(
                messages.c.company_id == company, messages.c.lead_id.in_(shells)
            )
            await forget_tracking(conn, company, sorted(set(lead_ids)), mail)
        await tombstones.sweep(conn)
        if erased:
            # A webhook already on its way when its job was erased logs its delivery
            # against a job that is gone: the log names nothing left, and goes too.
            await conn.execute(
                delete(webhook_deliveries).where(
                    webhook_deliveries.c.at >= since,
                    webhook_deliveries.c.job_id.not_in(select(automation_jobs.c.id)),
                )
            )
    return sum(len(ids) for ids in erased.values())


async def _sweep(db: Database, settings: Settings) -> int:
    await sweep(db)
    return 0  # the next sweep waits `erase_sweep_seconds` either way


def stage(settings: Settings) -> Stage:
    """Every process sweeps, without a lease: deleting twice is harmless."""
    return Stage("erase-sweep", _sweep, poll=settings.erase_sweep_seconds, leased=False)


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """The stage: sweep, wait, until `stop`."""
    await run_stage(stage(settings), db, settings, stop)
