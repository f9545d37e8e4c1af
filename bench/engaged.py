"""Who engaged, one page at a time: keyset pages vs OFFSET over a GROUP BY of raw events.

    .venv/bin/python bench/engaged.py [--recipients 100000] [--events 10000000]
                                      [--engines sqlite,postgresql] [--runs 30]
                                      [--pages 200] [--naive-runs 1]
                                      [--naive-lists opened,clicked]

One campaign of `--recipients` messages (each ~1 KB of HTML, as a stored message keeps
its body) and `--events` events, generated inside the database the way bench/report.py
does (recursive CTE on SQLite, generate_series on PostgreSQL; the events' secondary
indexes built after the load), then the rollups by `analytics.bulk.rebuild_bulk`. A
second campaign to the same leads (messages only) keeps the messages' lead index honest.
The recipients, by lead id modulo 20 (lead - 1):
  0-5   readers: human opens (even) or Gmail-proxy opens (odd); 0-1 also click; every
        500th lead forwards to a friend (a friend's copy) and a second reader opens it
  6-8   privacy-protected: Apple Mail Privacy Protection prefetches only
  9     scanned only (a security gateway opens and clicks)
  10    clicks with images off (an inferred open)
  11-19 no event at all; every 200th lead (class 11) unsubscribes; every 100th (class 19)
        bounced (the message failed).
The events are spread evenly over the leads of classes 0-10.

For each engagement list, in the same run: the first page (p50/p95 over `--runs`), then
the pages that follow it by cursor (up to `--pages`), then 20 pages followed from a
cursor half way and 20 from 90% of the way through the campaign; and the naive reference
(the same page with OFFSET over a GROUP BY of the campaign's raw events joined to its
messages) for the first page and for page `--pages`. "same" compares their lead ids.
The naive reference takes about a minute a page on SQLite at the default size;
`--naive-lists` runs it for those lists only (default: every list).
PostgreSQL: MAILBEACON_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/test); a
throwaway database mb_bench_engaged_* is created there and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from report import _pct, load_average, machine
from sqlalchemy import text

from mailbeacon.analytics import bulk
from mailbeacon.analytics.engaged import ENGAGEMENTS, encode_cursor, engaged_leads
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import events

PG = os.environ.get("MAILBEACON_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
LIMIT = 50
HTML = "<p>" + "Spring is here, and so is our new range. " * 24 + "</p>"  # ~1 KB

# Event i goes to active lead a = i % A (A = active leads), as its j-th event (j = i / A).
# Active lead a is lead (a / 11) * 20 + a % 11 + 1, of class a % 11.
SELECT_EVENTS = """
SELECT i + 1 AS id, {typ} AS type, {at} AS at, 1, lead, lead, 1,
  {verdict} AS verdict, {reason} AS reason, (cls = 10 AND j % 2 = 1) AS inferred,
  (fwd AND j % 10 = 2) AS forwarded, {client} AS client,
  CASE WHEN cls = 10 AND j % 2 = 0 OR cls < 2 AND j % 10 = 9 OR cls = 9 AND j % 2 = 1
       THEN 'https://example.com/' || (j % 4) END AS url,
  CASE WHEN cls = 10 AND j % 2 = 0 OR cls < 2 AND j % 10 = 9 OR cls = 9 AND j % 2 = 1
       THEN j % 4 END AS link_index,
  CASE WHEN fwd AND j % 10 = 2 THEN '203.0.113.' || (lead % 250) ELSE '198.51.100.7' END
FROM (SELECT i, a, j, cls, a / 11 * 20 + cls + 1 AS lead, (a / 11 * 20) % 500 = 0 AND cls = 0
      AS fwd FROM (SELECT i, i % {active} AS a, i / {active} AS j, i % {active} % 11 AS cls
      FROM s) q) t
"""
TYPE = """CASE WHEN fwd AND j = 1 THEN 'forward'
  WHEN cls = 10 AND j % 2 = 0 OR cls < 2 AND j % 10 = 9 OR cls = 9 AND j % 2 = 1 THEN 'click'
  ELSE 'open' END"""
VERDICT = """CASE WHEN cls BETWEEN 6 AND 8 THEN 'prefetch' WHEN cls = 9 THEN 'scanner'
  WHEN cls < 6 AND cls % 2 = 1 AND NOT (cls < 2 AND j % 10 = 9) THEN 'proxy' ELSE 'human' END"""
REASON = """CASE WHEN cls BETWEEN 6 AND 8 THEN 'Apple Mail Privacy Protection prefetch'
  WHEN cls = 9 THEN 'Microsoft Defender link scan' ELSE '' END"""
CLIENT = """CASE WHEN cls BETWEEN 6 AND 8 THEN 'Apple Mail' WHEN cls = 9 THEN NULL
  WHEN cls % 3 = 0 THEN 'Apple Mail' WHEN cls % 3 = 1 THEN 'Gmail' ELSE 'Outlook' END"""
COLUMNS = (
    "id, type, at, company_id, message_id, lead_id, campaign_id, verdict, reason, inferred,"
    " forwarded, client, url, link_index, ip"
)

# The naive reference: every page is a GROUP BY of the campaign's events, then OFFSET.
NAIVE = """
WITH agg AS (
  SELECT lead_id,
    SUM(CASE WHEN type = 'open' AND verdict IN ('human', 'proxy') AND NOT forwarded
        THEN 1 ELSE 0 END) AS opens,
    SUM(CASE WHEN type = 'click' AND verdict IN ('human', 'proxy') AND NOT forwarded
        THEN 1 ELSE 0 END) AS clicks,
    SUM(CASE WHEN type = 'open' AND verdict = 'prefetch' AND NOT forwarded
        THEN 1 ELSE 0 END) AS prefetches,
    SUM(CASE WHEN type = 'unsubscribe' THEN 1 ELSE 0 END) AS unsubscribes,
    SUM(CASE WHEN type = 'forward' OR forwarded AND verdict IN ('human', 'proxy')
        THEN 1 ELSE 0 END) AS forwards,
    MIN(CASE WHEN type = 'open' AND verdict IN ('human', 'proxy') AND NOT forwarded
        THEN at END) AS first_open_at,
    MAX(CASE WHEN type = 'open' AND verdict IN ('human', 'proxy') AND NOT forwarded
        THEN at END) AS last_open_at
  FROM events WHERE campaign_id = 1 GROUP BY lead_id
)
SELECT m.lead_id, l.email, l.first_name, l.last_name, agg.*
FROM messages m JOIN leads l ON l.id = m.lead_id LEFT JOIN agg ON agg.lead_id = m.lead_id
WHERE m.campaign_id = 1 AND m.forwarded_from_message_id IS NULL AND ({where})
ORDER BY m.lead_id LIMIT {limit} OFFSET {offset}
"""
NAIVE_WHERE = {
    "opened": "agg.opens > 0 OR agg.clicks > 0",
    "clicked": "agg.clicks > 0",
    "forwarded": "agg.forwards > 0",
    "not_opened": "m.status = 'sent' AND COALESCE(agg.opens + agg.clicks + agg.unsubscribes, 0)"
    " = 0 AND l.status NOT IN ('unsubscribed', 'bounced')",
    "privacy_protected": "agg.opens + agg.clicks = 0 AND agg.prefetches > 0",
    "unsubscribed": "agg.unsubscribes > 0",
    "bounced": "m.status = 'failed'",
}


async def _load(db: Database, n: int, recipients: int) -> None:
    pg = not db.is_sqlite
    at = (
        "timestamp '2024-03-04 09:00:00' + (j * 37 + a % 3600) * interval '1 second'"
        if pg
        else "datetime('2024-03-04 09:00:00', '+' || (j * 37 + a % 3600) || ' seconds')"
    )
    series = (
        "WITH s(i) AS (SELECT generate_series({a}, {b}))"
        if pg
        else "WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i < {b})"
    )
    r, friends = recipients, recipients // 500
    async with db.begin() as c:
        await c.execute(
            text(
                "INSERT INTO companies (id, name, plan, anonymize_ip, hit_retention_days,"
                " created_at) VALUES (1, 'Bench', 'ultimate', false, 0, '2024-03-01')"
            )
        )
        for k in (1, 2):
            await c.execute(
                text(
                    "INSERT INTO campaigns (id, company_id, name, subject, html,"
                    " pixel_placement, pixel_format, status, sent_count, skipped_count,"
                    " failed_count, created_at, sent_at) VALUES (:k, 1, :name, 's', 'h',"
                    " 'body', 'gif', 'sent', :sent, 0, :failed, '2024-03-04 09:00:00',"
                    " '2024-03-04 09:00:00')"
                ),
                {"k": k, "name": f"Campaign {k}", "sent": r - r // 100, "failed": r // 100},
            )
        # Leads 1..r; friends r+1..r+friends. Class 19 bounced, every 200th unsubscribed.
        await c.execute(
            text(
                series.format(a=1, b=r + friends)
                + " INSERT INTO leads (id, company_id, email, first_name, last_name, score,"
                " status, created_at) SELECT i, 1, 'l' || i || '@x.example', 'F' || i,"
                " 'L' || i, 0, CASE WHEN i > :r THEN 'subscribed'"
                " WHEN (i - 1) % 100 = 99 THEN 'bounced'"
                " WHEN (i - 1) % 200 = 11 THEN 'unsubscribed' ELSE 'subscribed' END,"
                " '2024-03-01' FROM s"
            ),
            {"r": r},
        )
        # Campaign 1: message id = lead id; campaign 2: r + friends + lead id.
        for k, first in ((2, r + friends), (1, 0)):
            await c.execute(
                text(
                    series.format(a=1, b=r)
                    + " INSERT INTO messages (id, company_id, lead_id, campaign_id, subject,"
                    " html, status, created_at, sent_at) SELECT :first + i, 1, i, :k, 's', :html,"
                    " CASE WHEN :k = 1 AND (i - 1) % 100 = 99 THEN 'failed' ELSE 'sent' END,"
                    " '2024-03-04 09:00:00', '2024-03-04 09:00:00' FROM s"
                ),
                {"first": first, "k": k, "html": HTML},
            )
        # A friend's copy of every 500th lead's message (campaign 1).
        await c.execute(
            text(
                series.format(a=1, b=friends)
                + " INSERT INTO messages (id, company_id, lead_id, campaign_id,"
                " forwarded_from_message_id, subject, html, status, created_at, sent_at)"
                " SELECT 2 * :r + :f + i, 1, :r + i, 1, (i - 1) * 500 + 1, 's', :html, 'sent',"
                " '2024-03-04 09:00:00', '2024-03-04 09:00:00' FROM s"
            ),
            {"r": r, "f": friends, "html": HTML},
        )
        for ix in events.indexes:
            await c.run_sync(ix.drop)
    active = r // 20 * 11
    body = SELECT_EVENTS.format(
        typ=TYPE, at=at, verdict=VERDICT, reason=REASON, client=CLIENT, active=active
    )
    step = 1_000_000
    for start in range(0, n, step):
        async with db.begin() as c:
            await c.execute(
                text(
                    series.format(a=start, b=min(start + step, n) - 1)
                    + f" INSERT INTO events ({COLUMNS}) "
                    + body
                )
            )
    async with db.begin() as c:
        # The unsubscribes: one event on each unsubscriber's message.
        await c.execute(
            text(
                f"INSERT INTO events ({COLUMNS}) SELECT :n + l.id, 'unsubscribe',"
                " '2024-03-05 09:00:00', 1, l.id, l.id, 1, 'human', '', false, false, NULL,"
                " NULL, NULL, NULL FROM leads l WHERE l.status = 'unsubscribed'"
            ),
            {"n": n},
        )
        for ix in events.indexes:
            await c.run_sync(ix.create)
        await c.execute(text("ANALYZE"))


Timed = Callable[[], Awaitable[object]]


async def _time(fn: Timed, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


def _ms(xs: list[float]) -> str:
    if not xs:
        return "      -"
    return f"p50 {_pct(xs, 0.5):7.2f} p95 {_pct(xs, 0.95):7.2f} ms"


async def _follow(db: Database, engagement: str, cursor: str | None, pages: int) -> tuple:
    """Follow `pages` pages by cursor from `cursor`; (times, lead ids of the last page)."""
    times, last = [], []
    for _ in range(pages):
        t = time.perf_counter()
        async with db.connect() as conn:
            page = await engaged_leads(conn, 1, 1, engagement, limit=LIMIT, cursor=cursor)
        times.append(time.perf_counter() - t)
        last = [item["lead_id"] for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    return times, last


async def _naive(db: Database, engagement: str, offset: int) -> list[int]:
    sql = NAIVE.format(where=NAIVE_WHERE[engagement], limit=LIMIT, offset=offset)
    async with db.connect() as conn:
        return [row[0] for row in await conn.execute(text(sql))]


async def bench(url: str, name: str, args: argparse.Namespace) -> None:
    db = Database(url)
    try:
        await upgrade(db)
        t = time.perf_counter()
        await _load(db, args.events, args.recipients)
        load = time.perf_counter() - t
        t = time.perf_counter()
        await bulk.rebuild_bulk(db)
        build = time.perf_counter() - t
        async with db.connect() as conn:
            n = (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one()
        print(
            f"{name}: {args.recipients:,} recipients, {n:,} events; load {load:.1f}s, "
            f"rollups (bulk) {build:.1f}s; load average {load_average()}",
            flush=True,
        )
        for engagement in ENGAGEMENTS:
            first = await _time(lambda e=engagement: _follow(db, e, None, 1), args.runs)
            deep, deep_last = await _follow(db, engagement, None, args.pages)
            jumps: list[float] = []
            for share in (0.5, 0.9):
                cursor = encode_cursor(engagement, int(args.recipients * share))
                jumps += (await _follow(db, engagement, cursor, 20))[0]
            _, first_ids = await _follow(db, engagement, None, 1)
            if engagement not in args.naive_lists:
                print(
                    f"  {engagement:<17} first page {_ms(first)} | next {len(deep) - 1:>3} "
                    f"pages {_ms(deep[1:])} | from 50%/90% {_ms(jumps)} | naive: not run "
                    f"| load {load_average()}",
                    flush=True,
                )
                continue
            naive_first = []
            for _ in range(args.naive_runs):
                t = time.perf_counter()
                naive_ids = await _naive(db, engagement, 0)
                naive_first.append(time.perf_counter() - t)
            offset = (len(deep) - 1) * LIMIT
            naive_deep = []
            for _ in range(args.naive_runs):
                t = time.perf_counter()
                naive_deep_ids = await _naive(db, engagement, offset)
                naive_deep.append(time.perf_counter() - t)
            same = naive_ids == first_ids and naive_deep_ids == deep_last
            ratio = _pct(naive_first, 0.5) / max(_pct(first, 0.5), 1e-6)
            print(
                f"  {engagement:<17} first page {_ms(first)} | next {len(deep) - 1:>3} pages "
                f"{_ms(deep[1:])} | from 50%/90% {_ms(jumps)} | naive first "
                f"{_pct(naive_first, 0.5):8.1f} ms, page {len(deep)} "
                f"{_pct(naive_deep, 0.5):8.1f} ms | x{ratio:,.0f} | same: "
                f"{'yes' if same else 'NO'} | load {load_average()}",
                flush=True,
            )
    finally:
        await db.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--recipients", type=int, default=100_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--naive-runs", type=int, default=1)
    ap.add_argument("--naive-lists", default=",".join(ENGAGEMENTS))
    args = ap.parse_args()
    args.naive_lists = set(args.naive_lists.split(","))
    if unknown := args.naive_lists - set(ENGAGEMENTS):
        ap.error(f"--naive-lists: unknown list {', '.join(sorted(unknown))}")
    args.recipients = max(1000, args.recipients // 1000 * 1000)
    print(f"machine: {machine()}; load average at start {load_average()}", flush=True)
    print(f"pages of {LIMIT} leads; times per page, through analytics.engaged", flush=True)
    engines = args.engines.split(",")
    if "sqlite" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            await bench(f"sqlite:///{Path(tmp) / 'bench.db'}", "sqlite", args)
    if "postgresql" in engines:
        dbname = f"mb_bench_engaged_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG)
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            await bench(f"{PG.rsplit('/', 1)[0]}/{dbname}", "postgresql", args)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
