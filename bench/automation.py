"""Benchmark the automation stage: 100,000 events through 100 rules.

    .venv/bin/python bench/automation.py [--database URL] [--events 100000] [--rate 0]

A producer commits events in batches (as enrich does) while the real stage
(`mailbeacon.automation.run_forever`) runs in this process. Prints events/s (the first
commit to the last event read by the consumer) and, for immediate actions, the delay
between an event's commit and its action's start (p50/p99). `--rate N` paces the
producer at N events/s; 0 commits as fast as it can.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from mailbeacon.automation import run_forever
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import campaigns, companies, cursors, events, leads, lists, messages
from mailbeacon.store.schema_automation import automation_jobs, automation_rules, automation_runs

CAMPAIGNS, LEADS, BATCH = 10, 20_000, 1000


def rules_for(company: int, campaign: int, lst: int) -> list[dict[str, Any]]:
    """Ten rules per campaign, a mix of once and repeat, local actions (immediate)."""
    score = lambda p: [{"type": "add_score", "points": p}]  # noqa: E731
    listed = [{"type": "add_to_list", "list_id": lst}]
    specs = [
        ({"type": "opened"}, score(1), False),
        ({"type": "opened"}, score(1), True),
        ({"type": "opened"}, listed, False),
        ({"type": "clicked"}, listed, False),
        ({"type": "clicked", "url_contains": "pricing"}, score(5), True),
        ({"type": "clicked"}, score(3), False),
        ({"type": "forwarded"}, score(2), False),
        ({"type": "unsubscribed"}, [{"type": "remove_from_list", "list_id": lst}], False),
        ({"type": "opened", "min_opens": 1}, score(1), True),
        ({"type": "not_opened", "within_seconds": 86400}, score(-1), False),
    ]
    at = now()
    return [
        {
            "company_id": company,
            "name": f"c{campaign} r{i}",
            "enabled": True,
            "repeat": repeat,
            "trigger": {**trigger, "campaign_id": campaign},
            "actions": actions,
            "created_at": at,
            "updated_at": at,
            "scan_sent_at": at - dt.timedelta(days=1) if trigger["type"] == "not_opened" else None,
            "scan_message_id": 0 if trigger["type"] == "not_opened" else None,
        }
        for i, (trigger, actions, repeat) in enumerate(specs)
    ]


async def seed(db: Database) -> tuple[int, list[tuple[int, int, int]]]:
    """A company, 10 campaigns, 20,000 leads with one sent message each, 100 rules."""
    at = now()
    async with db.begin() as conn:
        company = (
            await conn.execute(
                insert(companies)
                .values(name="Bench", plan="ultimate", created_at=at)
                .returning(companies.c.id)
            )
        ).scalar_one()
        lst = (
            await conn.execute(
                insert(lists)
                .values(company_id=company, name="hot", created_at=at)
                .returning(lists.c.id)
            )
        ).scalar_one()
        camp_ids = []
        for c in range(CAMPAIGNS):
            camp_ids.append(
                (
                    await conn.execute(
                        insert(campaigns)
                        .values(
                            company_id=company, name=f"c{c}", subject="s", html="h", created_at=at
                        )
                        .returning(campaigns.c.id)
                    )
                ).scalar_one()
            )
        rows = [
            {
                "company_id": company,
                "email": f"l{i}@bench.test",
                "score": 0,
                "status": "subscribed",
                "created_at": at,
            }
            for i in range(LEADS)
        ]
        lead_ids = list(
            (
                await conn.execute(
                    insert(leads).returning(leads.c.id, sort_by_parameter_order=True), rows
                )
            ).scalars()
        )
        msgs = [
            {
                "company_id": company,
                "lead_id": lid,
                "campaign_id": camp_ids[i % CAMPAIGNS],
                "subject": "s",
                "html": "h",
                "status": "sent",
                "created_at": at,
                "sent_at": at,
            }
            for i, lid in enumerate(lead_ids)
        ]
        msg_ids = list(
            (
                await conn.execute(
                    insert(messages).returning(messages.c.id, sort_by_parameter_order=True), msgs
                )
            ).scalars()
        )
        for campaign in camp_ids:
            await conn.execute(insert(automation_rules), rules_for(company, campaign, lst))
    targets = [
        (lid, mid, camp_ids[i % CAMPAIGNS])
        for i, (lid, mid) in enumerate(zip(lead_ids, msg_ids, strict=True))
    ]
    return company, targets


def random_event(rng: random.Random, company: int, target: tuple[int, int, int]) -> dict[str, Any]:
    lead, message, campaign = target
    roll = rng.random()
    kind, url = "open", None
    if roll > 0.70:
        kind = "click"
        url = "https://acme.test/pricing" if rng.random() < 0.3 else "https://acme.test/blog"
    if roll > 0.97:
        kind = "forward" if roll < 0.99 else "unsubscribe"
    verdict = rng.choices(["human", "prefetch", "proxy", "scanner", "bot"], [50, 25, 10, 10, 5])[0]
    return {
        "type": kind,
        "at": now(),
        "company_id": company,
        "message_id": message,
        "lead_id": lead,
        "campaign_id": campaign,
        "verdict": verdict,
        "reason": "bench",
        "inferred": False,
        "forwarded": False,
        "url": url,
    }


async def produce(
    db: Database, company: int, targets: list[Any], total: int, rate: float
) -> dict[int, dt.datetime]:
    """Commit `total` events in batches; returns each batch's last id -> commit time."""
    rng = random.Random(7)
    committed: dict[int, dt.datetime] = {}
    started = time.perf_counter()
    for done in range(0, total, BATCH):
        rows = [
            random_event(rng, company, rng.choice(targets)) for _ in range(min(BATCH, total - done))
        ]
        async with db.begin() as conn:
            await conn.execute(insert(events), rows)
            last = (await conn.execute(select(func.max(events.c.id)))).scalar_one()
        committed[last] = now()
        if rate:
            ahead = (done + len(rows)) / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return committed


def produce_in_process(
    url: str, company: int, targets: list[Any], total: int, rate: float
) -> dict[int, dt.datetime]:
    async def run() -> dict[int, dt.datetime]:
        db = Database(url)
        try:
            return await produce(db, company, targets, total, rate)
        finally:
            await db.dispose()

    return asyncio.run(run())


async def wait_drained(db: Database, last_id: int, stage: asyncio.Task[None]) -> float:
    while True:
        if stage.done():  # the stage died: say why instead of waiting forever
            stage.result()
        async with db.connect() as conn:
            pos = (
                await conn.execute(select(cursors.c.position).where(cursors.c.name == "automation"))
            ).scalar()
            pending = (
                await conn.execute(
                    select(func.count()).where(automation_jobs.c.status.in_(("pending", "running")))
                )
            ).scalar()
        if pos is not None and pos >= last_id and not pending:
            return time.perf_counter()
        await asyncio.sleep(0.02)


async def delays(db: Database, committed: dict[int, dt.datetime], after: int) -> list[float]:
    """Per job of this run's events: action start - its event's commit (its batch's)."""
    bounds = sorted(committed)
    async with db.connect() as conn:
        rows = (
            await conn.execute(
                select(automation_runs.c.event_id, automation_jobs.c.started_at)
                .join(automation_jobs, automation_jobs.c.run_id == automation_runs.c.id)
                .where(automation_runs.c.event_id > after)
            )
        ).all()
    out = []
    for event_id, started in rows:
        batch_end = bounds[bisect.bisect_left(bounds, event_id)]
        out.append((started - committed[batch_end]).total_seconds())
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: as fast as possible")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    setup = Database.unpooled(url)
    await upgrade(setup)
    company, targets = await seed(setup)
    await setup.dispose()
    stage_db, producer_db = Database(url), Database(url)
    async with producer_db.connect() as conn:
        first = (await conn.execute(select(func.max(events.c.id)))).scalar() or 0
    stop = asyncio.Event()
    stage = asyncio.create_task(run_forever(stage_db, Settings(database_url=url), stop))
    await asyncio.sleep(0.5)  # let the stage take its leases
    # The producer is another process, as enrich is: its CPU is not the stage's.
    t0 = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(produce_in_process, url, company, targets, args.events, args.rate)
        committed = await asyncio.wrap_future(future)
    t1 = time.perf_counter()
    t2 = await wait_drained(producer_db, max(committed), stage)
    stop.set()
    await stage
    d = sorted(await delays(producer_db, committed, first))
    async with producer_db.connect() as conn:
        jobs = (
            await conn.execute(
                select(func.count())
                .select_from(automation_jobs)
                .join(automation_runs, automation_runs.c.id == automation_jobs.c.run_id)
                .where(automation_runs.c.event_id > first)
            )
        ).scalar()
    print(f"database          {url.split(':')[0]}")
    print(f"events            {args.events} through 100 rules ({jobs} actions run)")
    print(f"produced in       {t1 - t0:.2f} s")
    print(f"events/s          {args.events / (t2 - t0):,.0f} (first commit to last action done)")
    print(f"start delay p50   {statistics.median(d) * 1000:.0f} ms")
    print(f"start delay p99   {d[int(len(d) * 0.99)] * 1000:.0f} ms")
    await stage_db.dispose()
    await producer_db.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
