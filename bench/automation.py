"""Benchmark the automation stage: 100,000 events through 100 rules.

    .venv/bin/python bench/automation.py [--database URL] [--events 100000] [--rate 0]

A producer commits events in batches (as enrich does) while the real stage
(`mailbeacon.automation.run_forever`) runs in this process. Prints events/s (the first
commit to the last event read by the consumer) and, for immediate actions, the delay
between an event's commit and its action's start (p50/p99). `--rate N` paces the
producer at N events/s; 0 commits as fast as it can (then the producer outruns the
consumer on PostgreSQL, and the start delay measures the backlog, not the stage: use
`--rate 11000` to see the delay at the 10,000 events/s target).

The reference, measured in the same run on a database of its own: the naive consumer
(`naive`), one event per transaction with its rules queried each time.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from edge import machine  # bench/edge.py: the same machine line
from sqlalchemy import func, insert, select, update

from mailbeacon.automation import run_forever
from mailbeacon.automation.firing import CompiledRule
from mailbeacon.automation.triggers import Event, fits, run_key, trigger_kind
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import (
    campaigns,
    companies,
    cursors,
    events,
    leads,
    list_members,
    lists,
    messages,
)
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


async def naive(url: str, count: int) -> float:
    """The reference, measured in the same run: what a first version would do, one event
    per transaction, its rules queried each time, runs looked up before they are written,
    each action applied on its own. Returns events/s over `count` events."""
    db = Database(url)
    setup = Database.unpooled(url)
    company, targets = await seed(setup)
    await setup.dispose()
    rng = random.Random(11)
    rows = [random_event(rng, company, rng.choice(targets)) for _ in range(count)]
    async with db.begin() as conn:
        await conn.execute(insert(events), rows)
        first = (await conn.execute(select(func.min(events.c.id)))).scalar_one()
    rules = automation_rules.c
    started = time.perf_counter()
    for event_id in range(first, first + count):
        async with db.begin() as conn:
            row = (await conn.execute(select(events).where(events.c.id == event_id))).one()
            ev = Event.of(row._mapping)
            kind = trigger_kind(ev)
            if kind is None:
                continue
            found = await conn.execute(
                select(automation_rules).where(rules.company_id == ev.company_id, rules.enabled)
            )
            for rule_row in found.mappings():
                rule = CompiledRule.of(rule_row)
                if rule.trigger.type != kind or not fits(rule.trigger, ev):
                    continue
                key = run_key(rule.repeat, f"event:{ev.id}")
                runs = automation_runs.c
                seen = await conn.execute(
                    select(runs.id).where(
                        runs.rule_id == rule.id, runs.lead_id == ev.lead_id, runs.key == key
                    )
                )
                if seen.first() is not None:
                    continue
                at = now()
                run_id = (
                    await conn.execute(
                        insert(automation_runs)
                        .values(rule_id=rule.id, company_id=company, lead_id=ev.lead_id, key=key,
                                event_id=ev.id, trigger="{}", created_at=at)
                        .returning(runs.id)
                    )
                ).scalar_one()  # fmt: skip
                for i, action in enumerate(rule.actions):
                    if action["type"] == "add_score":
                        await conn.execute(
                            update(leads)
                            .where(leads.c.id == ev.lead_id)
                            .values(score=leads.c.score + action["points"])
                        )
                    elif action["type"] == "add_to_list":
                        await conn.execute(
                            dialect_insert(conn, list_members).values(
                                list_id=action["list_id"], lead_id=ev.lead_id,
                                company_id=company, added_at=at,
                            ).on_conflict_do_nothing()
                        )  # fmt: skip
                    await conn.execute(
                        insert(automation_jobs).values(
                            run_id=run_id, action_index=i, rule_id=rule.id, company_id=company,
                            lead_id=ev.lead_id, kind=action["type"], action=json.dumps(action),
                            status="done", due_at=at, attempts=1, created_at=at,
                            started_at=at, finished_at=at,
                        )
                    )  # fmt: skip
    elapsed = time.perf_counter() - started
    await db.dispose()
    return count / elapsed


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
    parser.add_argument(
        "--naive-events", type=int, default=3000, help="events through the naive reference"
    )
    args = parser.parse_args()
    url = args.database or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    reference = 0.0
    if args.naive_events:
        # its own database on SQLite; its own company (and rules) on PostgreSQL
        naive_url = (
            f"sqlite:///{Path(tempfile.mkdtemp()) / 'naive.db'}"
            if url.startswith("sqlite")
            else url
        )
        setup = Database.unpooled(naive_url)
        await upgrade(setup)
        await setup.dispose()
        reference = await naive(naive_url, args.naive_events)
    setup = Database.unpooled(url)
    await upgrade(setup)
    company, targets = await seed(setup)
    await setup.dispose()
    stage_db, producer_db = Database(url), Database(url)
    async with producer_db.connect() as conn:
        first = (await conn.execute(select(func.max(events.c.id)))).scalar() or 0
    stop = asyncio.Event()
    settings = Settings(database_url=url, secret_keys=(("bench", b"bench-automation-key"),))
    stage = asyncio.create_task(run_forever(stage_db, settings, stop))
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
    print(f"machine           {machine()}")
    print(f"database          {url.split(':')[0]}")
    print(f"events            {args.events} through 100 rules ({jobs} actions run)")
    print(f"produced in       {t1 - t0:.2f} s")
    print(f"events/s          {args.events / (t2 - t0):,.0f} (first commit to last action done)")
    if reference:
        ratio = args.events / (t2 - t0) / reference
        print(f"naive reference   {reference:,.0f} events/s (event by event; {ratio:.1f}x slower)")
    print(f"start delay p50   {statistics.median(d) * 1000:.0f} ms")
    print(f"start delay p99   {d[int(len(d) * 0.99)] * 1000:.0f} ms")
    await stage_db.dispose()
    await producer_db.dispose()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
