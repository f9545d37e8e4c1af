"""COPY of raw hits into the monthly-partitioned `hits` (migration 0015) versus the plain
table (migration 0007), and EXPLAIN of the queries that read `hits` and `events`.

Uses its own PostgreSQL databases (never `test`): mb_bench_plain and mb_bench_parts,
created afresh and dropped at the end.

    python bench/partitions.py [--rows 1000000] [--batch 5000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import time

import asyncpg
from alembic import command
from sqlalchemy.engine import Connection

from mailbeacon.recorder.postgres import COLUMNS
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import alembic_config
from mailbeacon.store.partitions import add_months, ensure_partitions, month_start

ADMIN = os.environ.get("MAILBEACON_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BASE = ADMIN.rsplit("/", 1)[0]
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"

# What the stages and pages ask of the two tables (enrich, retention, the API).
QUERIES = {
    "enrich: next hits": "SELECT * FROM hits WHERE id > {mid} ORDER BY id LIMIT 1000",
    "api: a message's hits": "SELECT kind, count(*) FROM hits WHERE message_id = 4242 GROUP BY 1",
    "retention: old hits of a company": (
        "SELECT count(*) FROM hits WHERE company_id = 3 AND at < now() - interval '150 days'"
    ),
    "stages: next events": "SELECT * FROM events WHERE id > {mid} ORDER BY id LIMIT 1000",
    "timeline: a message's events": (
        "SELECT * FROM events WHERE company_id = 1 AND message_id = 4242 ORDER BY at, id"
    ),
    "lead page: a lead's events": (
        "SELECT * FROM events WHERE company_id = 1 AND lead_id = 77 ORDER BY at DESC, id DESC"
    ),
    "enrich state: recent opens": (
        "SELECT message_id, ip, client, max(at) FROM events WHERE message_id IN (1, 2, 3)"
        " AND type = 'open' AND NOT inferred AND at >= now() - interval '2 days'"
        " GROUP BY 1, 2, 3"
    ),
    "campaign events": "SELECT count(*) FROM events WHERE campaign_id = 7",
}


def _move(conn: Connection, target: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, target)


async def _fresh(name: str, revision: str) -> str:
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{BASE}/{name}"
    db = Database.unpooled(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(_move, revision)
        # Steady state: each past month got its partition when it was the current one.
        months = [add_months(month_start(now()), -n) for n in range(1, 8)]
        await conn.run_sync(lambda c: ensure_partitions(c, also=months))
    await db.dispose()
    return url


def _hits(n: int, seed: int = 7) -> list[tuple]:
    """n hits over the last six months, in time order (as the edge writes them)."""
    rnd = random.Random(seed)
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=180)
    step = dt.timedelta(days=180) / n
    return [
        (start + step * i, "open", rnd.randint(1, 5), rnd.randint(1, 200_000),
         rnd.randint(1, 50_000), None, f"203.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
         UA, "en-US", "GET")
        for i in range(n)
    ]  # fmt: skip


async def _copy(url: str, rows: list[tuple], batch: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            await conn.copy_records_to_table("hits", records=rows[i : i + batch], columns=COLUMNS)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def _explain(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        # Events from the hits, as enrich would derive them (one open each).
        await conn.execute(
            "INSERT INTO events (hit_id, type, at, company_id, message_id, lead_id,"
            " campaign_id, verdict, reason, inferred, forwarded, ip)"
            " SELECT id, 'open', at, company_id, message_id, lead_id, message_id % 50,"
            " 'human', '', false, false, ip FROM hits ORDER BY id"
        )
        await conn.execute("VACUUM ANALYZE hits")
        await conn.execute("VACUUM ANALYZE events")
        mid = await conn.fetchval("SELECT max(id) - 5000 FROM hits")
        for label, sql in QUERIES.items():
            plan = await conn.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql.format(mid=mid)
            )
            lines = [r[0] for r in plan]
            scans = sorted({ln.strip().split(" on ")[0].lstrip("-> ") for ln in lines
                            if " on " in ln and "Scan" in ln})  # fmt: skip
            took = next((ln for ln in lines if ln.startswith("Execution Time")), "")
            print(f"  {label:36} {took:28} {'; '.join(scans)}")
    finally:
        await conn.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    rows = _hits(args.rows)
    plain = await _fresh("mb_bench_plain", "0007")
    parts = await _fresh("mb_bench_parts", "head")
    for label, url in (("plain", plain), ("partitioned", parts)):
        took = await _copy(url, rows, args.batch)
        print(f"COPY {args.rows:,} hits, {args.batch} a batch, {label:11}: {took:6.2f} s"
              f" = {args.rows / took:,.0f} hits/s")  # fmt: skip
    for label, url in (("plain", plain), ("partitioned", parts)):
        print(f"EXPLAIN ANALYZE, {label}:")
        await _explain(url)
    if not args.keep:
        admin = await asyncpg.connect(ADMIN)
        for name in ("mb_bench_plain", "mb_bench_parts"):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
