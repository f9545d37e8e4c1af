"""Benchmark: enrich synthetic hits through the pure path, then through the DB pipeline.

    .venv/bin/python bench/enrich.py [--hits 1000000] [--db-hits 20000] [--geoip var/geo]

The pure path is what the pipeline does per hit once a batch is loaded: user agent,
network, place, verdict, forward and repeat-open rules, building the event rows. The
mix is a realistic one for B2B mail: mostly Gmail's proxy, Apple Mail (with and
without privacy protection) and Outlook, some webmail and phones, a few scanners and
bots; a few thousand distinct user agents (versions vary) and 200,000 addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from mailbeacon.enrich import networks, pipeline, useragent
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.state import MessageState
from mailbeacon.settings import Settings
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import hits

T0 = dt.datetime(2026, 1, 5, 9, 0, 0)

# (weight, kind, user-agent template with {v} for a version number, address pool)
MIX = [
    (
        30,
        "open",
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "google",
    ),
    (
        14,
        "open",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.{v} (KHTML, like Gecko)",
        "apple",
    ),
    (
        6,
        "open",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        "reader",
    ),
    (
        12,
        "open",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.{v}; Pro)",
        "reader",
    ),
    (
        5,
        "open",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "yahoo",
    ),
    (
        4,
        "open",
        "Mozilla/5.0 (Linux; Android 13; SM-S9{v}B; wv) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Version/4.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        "reader",
    ),
    (
        2,
        "open",
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.{v}",
        "reader",
    ),
    (
        15,
        "click",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/{v}.0.0.0 Safari/537.36",
        "reader",
    ),
    (
        5,
        "click",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.{v} Mobile/15E148 Safari/604.1",
        "reader",
    ),
    (
        4,
        "click",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/{v}.0.0.0 Safari/537.36",
        "scanner",
    ),
    (2, "click", "python-requests/2.{v}.0", "reader"),
    (
        1,
        "click",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "reader",
    ),
]
POOLS = {
    "google": ["66.249.{}.{}", "66.102.{}.{}", "74.125.{}.{}"],
    "yahoo": ["98.137.{}.{}", "74.6.{}.{}"],
    "apple": ["17.58.{}.{}", "17.121.{}.{}"],
    "scanner": ["40.94.{}.{}", "148.163.{}.{}", "20.42.{}.{}"],
}


@dataclass(frozen=True, slots=True)
class FakeHit:
    id: int
    at: dt.datetime
    kind: str
    company_id: int
    message_id: int
    lead_id: int
    link_index: int | None
    ip: str | None
    user_agent: str | None
    method: str = "GET"


def _reader_ips(rng: random.Random, n: int) -> list[str]:
    ips = [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        for _ in range(n - n // 10)
    ]
    ips += [
        f"2a02:c7c:{rng.randint(0, 0xFFFF):x}:{rng.randint(0, 0xFFFF):x}::1" for _ in range(n // 10)
    ]
    return ips


def synthetic_hits(n: int, seed: int = 7) -> list[FakeHit]:
    rng = random.Random(seed)
    readers = _reader_ips(rng, 200_000)
    weights = [m[0] for m in MIX]
    out = []
    for i in range(1, n + 1):
        _, kind, template, pool = rng.choices(MIX, weights)[0]
        ua = template.format(v=rng.randint(1, 400))
        if pool == "reader":
            ip = readers[
                min(int(rng.paretovariate(1.2)) * rng.randint(0, 50), len(readers) - 1)
                if rng.random() < 0.5
                else rng.randrange(len(readers))
            ]
        else:
            ip = rng.choice(POOLS[pool]).format(rng.randint(0, 15), rng.randint(1, 254))
        message = rng.randint(1, 100_000)
        out.append(
            FakeHit(
                i,
                T0 + dt.timedelta(seconds=i * 0.05),
                kind,
                1,
                message,
                message,
                rng.randint(0, 4) if kind == "click" else None,
                ip,
                ua,
            )
        )
    return out


def bench_pure(sample: list[FakeHit], locator: Locator) -> None:
    states: dict[int, MessageState] = {}
    events = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for hit in sample:
        state = states.get(hit.message_id)
        if state is None:
            state = states[hit.message_id] = MessageState(sent_at=T0)
        events += len(pipeline.events_for(hit, state, locator, hit.ip))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # CPU time is this process's own core: other work on a shared machine does not count.
    print(
        f"pure path: {len(sample):,} hits -> {events:,} events; "
        f"{len(sample) / cpu:,.0f} hits/s of CPU time ({cpu:.2f} s), "
        f"{len(sample) / wall:,.0f} hits/s wall ({wall:.2f} s)"
    )


async def bench_db(sample: list[FakeHit], settings: Settings, locator: Locator) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        db = Database(url)
        await upgrade(db)
        rows = [
            {
                "at": h.at,
                "kind": h.kind,
                "company_id": 1,
                "message_id": h.message_id,
                "lead_id": h.lead_id,
                "link_index": h.link_index,
                "ip": h.ip,
                "user_agent": h.user_agent,
                "method": h.method,
            }
            for h in sample
        ]
        async with db.begin() as conn:
            await conn.execute(insert(hits), rows)
        wall, cpu = time.perf_counter(), time.process_time()
        n = 0
        while step := await pipeline.process_batch(
            db, settings.with_(database_url=url), locator, at_now=dt.datetime(2100, 1, 1)
        ):
            n += step
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(
            f"DB pipeline (SQLite, batches of {pipeline.BATCH_SIZE}): {n:,} hits; "
            f"{n / wall:,.0f} hits/s wall ({wall:.2f} s; this process's CPU {cpu:.2f} s)"
        )
        await db.dispose()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=1_000_000)
    parser.add_argument("--db-hits", type=int, default=20_000)
    parser.add_argument("--geoip", default="var/geo" if Path("var/geo").exists() else None)
    args = parser.parse_args()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()};"
        f" one process, one core"
    )
    print(
        f"ua-parser resolver: {type(useragent._parser().resolver).__name__} "
        f"over {useragent.ua_parser.BestAvailableResolver.__module__}"
    )
    print(f"geo: country (iptocc){' + city (DB-IP ' + args.geoip + ')' if args.geoip else ''}")
    sample = synthetic_hits(args.hits)
    locator = Locator(args.geoip)
    bench_pure(sample, locator)
    addresses = networks.address.cache_info()
    print(f"address cache hit rate {addresses.hits / (addresses.hits + addresses.misses):.1%}")
    print(
        f"UA cache hit rate {useragent.cache_hit_rate():.1%} "
        f"({useragent.classify.cache_info().currsize:,} distinct agents); "
        f"geo cache hit rate {locator.cache_hit_rate():.1%}"
    )
    if args.db_hits:
        asyncio.run(bench_db(sample[: args.db_hits], Settings(), locator))


if __name__ == "__main__":
    main()
