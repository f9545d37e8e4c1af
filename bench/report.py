"""Campaign report latency over N synthetic events: rollups vs the naive GROUP BY.

    .venv/bin/python bench/report.py [--events 10000000] [--engines sqlite,postgresql]
                                     [--build bulk|incremental] [--naive-runs 3]

Events (and one message per lead and campaign) are generated inside the database
(recursive CTE on SQLite, generate_series on PostgreSQL; the events' secondary indexes
are dropped during the load and built after it). The rollups are then built by
`analytics.bulk.rebuild_bulk` (GROUP BY in the database; tests/analytics/test_bulk.py
shows it writes the same rows as the pipeline's incremental path), or with
`--build incremental` by `rollups.rebuild`, the pipeline's own path (~10k events/s).
Then, in the same run, the report of one campaign (1/10 of the events) is timed through
`campaign_report` (rollups) and through `naive_report` (GROUP BY over raw events).
PostgreSQL: MAILBEACON_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test); a
throwaway database mb_bench_report_* is created on that server and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import text

from mailbeacon.analytics import bulk, rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import events

# testkit/ sits at the repo root, outside the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from testkit.naive import naive_report

PG = os.environ.get("MAILBEACON_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
CAMPAIGNS = 10
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Sydney")

# Event i: campaign i % 10, lead (i / 10) % leads, on that lead's message of the
# campaign; every campaign gets the same mix of types and verdicts.
SELECT_EVENTS = """
SELECT i,
  CASE WHEN i / 3 % 10 < 6 THEN 'open' WHEN i / 3 % 10 < 9 THEN 'click'
       WHEN i / 3 % 20 = 9 THEN 'forward' ELSE 'unsubscribe' END,
  {at}, 1, (i / 10) % {leads} * 100 + i % 10 + 1, (i / 10) % {leads} + 1, i % 10 + 1,
  CASE WHEN i % 7 < 4 THEN 'human' WHEN i % 7 = 4 THEN 'proxy'
       WHEN i % 7 = 5 THEN 'prefetch' WHEN i % 11 = 0 THEN 'bot' ELSE 'scanner' END,
  '', (i % 13 = 0), (i % 17 = 0),
  CASE i % 5 WHEN 0 THEN 'Apple Mail' WHEN 1 THEN 'Gmail' WHEN 2 THEN 'Outlook'
       WHEN 3 THEN 'Thunderbird' ELSE 'Yahoo Mail' END,
  CASE i % 3 WHEN 0 THEN 'iPhone' WHEN 1 THEN 'Desktop' ELSE 'Android' END,
  'iOS',
  CASE i % 6 WHEN 0 THEN 'FR' WHEN 1 THEN 'US' WHEN 2 THEN 'DE' WHEN 3 THEN 'IN'
       WHEN 4 THEN 'GB' ELSE 'BR' END,
  'https://example.com/' || (i % 8), i % 8, '10.0.' || (i % 250) || '.' || (i % 199)
FROM s
"""
COLUMNS = (
    "id, type, at, company_id, message_id, lead_id, campaign_id, verdict, reason, inferred,"
    " forwarded, client, device, os, country, url, link_index, ip"
)


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))] * 1000


def machine() -> str:
    model = platform.processor() or "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _load(db: Database, n: int, leads: int) -> None:
    pg = not db.is_sqlite
    at = (
        "timestamp '2024-03-04 09:00:00' + (i % 604800) * interval '1 second'"
        if pg
        else "datetime('2024-03-04 09:00:00', '+' || (i % 604800) || ' seconds')"
    )
    series = (
        "WITH s(i) AS (SELECT generate_series({a}, {b}))"
        if pg
        else "WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i < {b})"
    )
    async with db.begin() as c:
        await c.execute(
            text(
                "INSERT INTO companies (id, name, plan, anonymize_ip, hit_retention_days,"
                " created_at) VALUES (1, 'Bench', 'ultimate', false, 0, '2024-03-01')"
            )
        )
        for k in range(1, CAMPAIGNS + 1):
            await c.execute(
                text(
                    "INSERT INTO campaigns (id, company_id, name, subject, html,"
                    " pixel_placement, pixel_format, status, sent_count, skipped_count,"
                    " failed_count, created_at, sent_at) VALUES (:k, 1, :name, 's', 'h',"
                    " 'body', 'gif', 'sent', :sent, 0, 0, '2024-03-04 09:00:00',"
                    " '2024-03-04 09:00:00')"
                ),
                {"k": k, "name": f"Campaign {k}", "sent": leads},
            )
        zone = " ".join(f"WHEN {j} THEN '{z}'" for j, z in enumerate(ZONES))
        await c.execute(
            text(
                series.format(a=1, b=leads)
                + " INSERT INTO leads (id, company_id, email, timezone, score, status,"
                " created_at) SELECT i, 1, 'l' || i || '@x.example',"
                f" CASE i % {len(ZONES)} {zone} END, 0, 'subscribed', '2024-03-01' FROM s"
            )
        )
        # Message (lead l, campaign c) has id (l - 1) * 100 + c, as the events expect.
        await c.execute(
            text(
                series.format(a=0, b=leads * CAMPAIGNS - 1)
                + " INSERT INTO messages (id, company_id, lead_id, campaign_id, subject, html,"
                " status, created_at, sent_at) SELECT i / 10 * 100 + i % 10 + 1, 1,"
                " i / 10 + 1, i % 10 + 1, 's', 'h', 'sent', '2024-03-04 09:00:00',"
                " '2024-03-04 09:00:00' FROM s"
            )
        )
        for ix in events.indexes:
            await c.run_sync(ix.drop)
    step = 1_000_000
    for start in range(0, n, step):
        body = SELECT_EVENTS.format(at=at, leads=leads)
        async with db.begin() as c:
            await c.execute(
                text(
                    series.format(a=start, b=min(start + step, n) - 1)
                    + f" INSERT INTO events ({COLUMNS}) "
                    + body.replace("SELECT i,", "SELECT i + 1,")
                )
            )
    async with db.begin() as c:
        for ix in events.indexes:
            await c.run_sync(ix.create)
        await c.execute(text("ANALYZE"))


async def _time(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


async def bench(url: str, name: str, n: int, leads: int, build_path: str, naive_runs: int) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        t = time.perf_counter()
        await _load(db, n, leads)
        load = time.perf_counter() - t
        t = time.perf_counter()
        if build_path == "bulk":
            how = "bulk GROUP BY (analytics.bulk.rebuild_bulk)"
            await bulk.rebuild_bulk(db)
        else:
            how = "incremental, the pipeline's path (rollups.rebuild)"
            await rollups.rebuild(db, limit=20_000)
        build = time.perf_counter() - t
        print(
            f"{name:<10} events={n:>10,}  load {load:6.1f}s  rollups built by {how} "
            f"in {build:6.1f}s = {n / build:,.0f} ev/s   load average {load_average()}",
            flush=True,
        )

        async def fast() -> None:
            async with db.connect() as conn:
                await campaign_report(conn, 1, 1)

        async def slow() -> None:
            async with db.connect() as conn:
                await naive_report(conn, 1, 1)

        async with db.connect() as conn:
            a, b = await campaign_report(conn, 1, 1), await naive_report(conn, 1, 1)
            rows = (
                await conn.execute(text("SELECT count(*) FROM events WHERE campaign_id = 1"))
            ).scalar_one()
        a.pop("name"), a.pop("sent_at")
        same = "yes" if a == b else "NO"
        f = await _time(fast, 200)
        s = await _time(slow, naive_runs)
        print(
            f"{'':<10} campaign 1: {rows:,} events, sent {a['sent']:,}, "
            f"opens_total {a['opens_total']:,}, clicks_total {a['clicks_total']:,}"
        )
        print(
            f"{'':<10} report p50 {_pct(f, 0.5):7.2f} ms  p99 {_pct(f, 0.99):7.2f} ms "
            f"({len(f)} runs)   |   naive GROUP BY p50 {_pct(s, 0.5):9.1f} ms  "
            f"p99 {_pct(s, 0.99):9.1f} ms ({len(s)} runs)   same numbers: {same}   "
            f"load average {load_average()}",
            flush=True,
        )
    finally:
        await db.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--leads", type=int, default=100_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--build", choices=("bulk", "incremental"), default="bulk")
    ap.add_argument("--naive-runs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}; load average at start {load_average()}", flush=True)
    engines = args.engines.split(",")
    run = (args.events, args.leads, args.build, args.naive_runs)
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            await bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", *run)
    if "postgresql" in engines:
        dbname = f"mb_bench_report_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            await bench(f"{PG.rsplit('/', 1)[0]}/{dbname}", "postgresql", *run)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
