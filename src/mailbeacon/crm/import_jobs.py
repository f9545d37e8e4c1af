"""Background CSV imports: a large file is stored as a job and imported by a stage.

A request that uploads a big file (`is_large`) answers at once with the job's id; the
`lead-imports` pipeline stage takes queued jobs oldest first, runs `import_leads` with
a progress callback that writes `processed_rows` after each committed chunk (~2,000
rows), and marks the job done (or failed, with the reason). A page polls the job, so
its progress bar survives a reload. The stored file is dropped once the job ends.

One process runs the stage at a time (a lease), so a job found `running` when the
stage starts was cut short by a crash: it is queued again (importing a file twice is
safe, see `crm.imports`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import CrmError, NotFound
from mailbeacon.crm.imports import import_leads
from mailbeacon.crm.lists import get_list
from mailbeacon.crm.users import Principal, get_principal
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.schema import lead_imports

log = logging.getLogger(__name__)

LARGE_ROWS = 5_000
LARGE_BYTES = 1_000_000
LEASE_SECONDS = 300.0  # longer than any import; a crashed holder's jobs wait this long
STATUSES = ("queued", "running", "done", "failed")
JOB_FIELDS = tuple(c for c in lead_imports.c if c.name != "content")


def is_large(data: bytes) -> bool:
    """Whether a file should import in the background: over 1 MB or 5,000 lines."""
    return len(data) > LARGE_BYTES or data.count(b"\n") > LARGE_ROWS


async def queue_import(
    conn: AsyncConnection, who: Principal, data: bytes, *, filename: str, list_id: int | None
) -> dict[str, Any]:
    """Store the file as a queued job (404 for a list the company does not have)."""
    if list_id is not None:
        await get_list(conn, who.company_id, list_id)
    result = await conn.execute(
        insert(lead_imports)
        .values(
            company_id=who.company_id,
            user_id=who.user_id,
            list_id=list_id,
            filename=(filename or "leads.csv")[:300],
            status="queued",
            content=data,
            # A first guess for the bar; the stage counts the real rows.
            total_rows=max(0, data.count(b"\n") - 1),
            processed_rows=0,
            created_at=now(),
        )
        .returning(lead_imports.c.id)
    )
    return await get_job(conn, who.company_id, int(result.scalar_one()))


async def get_job(conn: AsyncConnection, company_id: int, job_id: int) -> dict[str, Any]:
    row = (
        (
            await conn.execute(
                select(*JOB_FIELDS).where(
                    lead_imports.c.id == job_id, lead_imports.c.company_id == company_id
                )
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"import {job_id} does not exist")
    job = dict(row)
    job["rejected"] = job["rejected"] or []
    return job


async def _claim(db: Database) -> dict[str, Any] | None:
    """The oldest queued job, now marked running; None when there is none."""
    async with db.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(lead_imports.c.id, lead_imports.c.user_id, lead_imports.c.list_id)
                    .where(lead_imports.c.status == "queued")
                    .order_by(lead_imports.c.id)
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        await conn.execute(
            update(lead_imports).where(lead_imports.c.id == row["id"]).values(status="running")
        )
        return dict(row)


async def _finish(db: Database, job_id: int, **values: Any) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(lead_imports)
            .where(lead_imports.c.id == job_id)
            .values(content=None, finished_at=now(), **values)
        )


async def run_job(db: Database, job: dict[str, Any]) -> None:
    """Import one claimed job, writing its progress as the chunks commit."""
    job_id = int(job["id"])
    async with db.connect() as conn:
        who = await get_principal(conn, job["user_id"]) if job["user_id"] else None
        content = (
            await conn.execute(select(lead_imports.c.content).where(lead_imports.c.id == job_id))
        ).scalar()
    if who is None or content is None:
        await _finish(db, job_id, status="failed", error="the user who uploaded it is gone")
        return
    writes: list[asyncio.Task[None]] = []

    async def write(done: int, total: int, before: asyncio.Task[None] | None) -> None:
        if before is not None:  # one after the other: the bar never goes back
            await asyncio.gather(before, return_exceptions=True)
        async with db.begin() as conn:
            await conn.execute(
                update(lead_imports)
                .where(lead_imports.c.id == job_id)
                .values(processed_rows=done, total_rows=total)
            )

    def progress(done: int, total: int) -> None:
        # Called between chunks (sync); the write runs on the loop beside the import.
        before = writes[-1] if writes else None
        writes.append(asyncio.get_running_loop().create_task(write(done, total, before)))

    try:
        result = await import_leads(db, who, content, list_id=job["list_id"], progress=progress)
    except CrmError as e:
        await asyncio.gather(*writes, return_exceptions=True)
        await _finish(db, job_id, status="failed", error=e.message)
        return
    except Exception as e:  # a bug or a lost database: say so on the page, keep running
        log.exception("lead import %d failed", job_id)
        await asyncio.gather(*writes, return_exceptions=True)
        await _finish(db, job_id, status="failed", error=f"the import stopped: {e}")
        return
    await asyncio.gather(*writes, return_exceptions=True)
    await _finish(
        db,
        job_id,
        status="done",
        imported=result.imported,
        updated=result.updated,
        rejected=result.rejected,
    )


async def requeue_interrupted(db: Database) -> None:
    async with db.begin() as conn:
        await conn.execute(
            update(lead_imports)
            .where(lead_imports.c.status == "running")
            .values(status="queued", processed_rows=0)
        )


async def _next_job(db: Database, settings: Settings) -> int:
    """Import the oldest queued job, if any; the number of jobs run (0 or 1)."""
    job = await _claim(db)
    if job is None:
        return 0
    await run_job(db, job)
    return 1


async def _requeue(db: Database, settings: Settings) -> None:
    await requeue_interrupted(db)


def stage(settings: Settings) -> Stage:
    """The `lead-imports` stage: queued jobs one at a time, oldest first. A job found
    running when this process takes the lease was cut short by a crash: queued again."""
    return Stage(
        "lead-imports",
        _next_job,
        poll=settings.lead_imports_poll_seconds,
        lease_seconds=LEASE_SECONDS,
        acquired=_requeue,
    )


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    await run_stage(stage(settings), db, settings, stop)
