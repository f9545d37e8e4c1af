"""Benchmark event webhooks: events fanned out and POSTed to a local receiver.

    .venv/bin/python bench/webhooks.py [--database URL] [--events 20000] [--leads 1000]
        [--rate 0] [--concurrency 256] [--delay-ms 0]

A producer commits events in batches of 1,000 (as enrich does) while the real stage
(`mailbeacon.automation.event_stage.run_forever`) runs in this process; a raw asyncio
HTTP/1.1 receiver in a process of its own answers 200 and notes when each delivery
arrived. Prints events/s (first commit to last arrival), the delay from an event's
commit to its arrival at the receiver (p50/p99), and checks every event arrived once
and in order per lead. `--rate N` paces the producer at N events/s (0: as fast as it
can, then the delay measures the backlog, not the stage). `--delay-ms` makes the
receiver answer that much later, as one across a network does.

The reference, measured in the same run against the same receiver: the naive sender,
one POST per event, sequentially, in event order (what a simple loop over the events
table does), on a sample of `--naive` events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from mailbeacon.automation.event_sender import body_of
from mailbeacon.automation.event_stage import run_forever
from mailbeacon.automation.webhooks import sign
from mailbeacon.settings import Settings
from mailbeacon.store import Database, now
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.schema import companies, events, leads, messages, plans
from mailbeacon.store.schema_webhooks import event_webhook_deliveries, event_webhooks

SECRET = "bench-secret-123"


def machine() -> str:
    model = "unknown cpu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0]
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} cores, load {load:.1f}, {system}"


# -- the receiver: raw asyncio HTTP/1.1 with keep-alive, in its own process -----------


class Receive(asyncio.Protocol):
    def __init__(self, got: list[tuple[int, int, int, float]], delay: float) -> None:
        self.got, self.buf, self.delay = got, b"", delay

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            event = json.loads(body)["event"]
            self.got.append((event["id"], event["lead_id"], json.loads(body)["delivery_id"],
                             time.time()))  # fmt: skip
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
            if self.delay:  # a receiver across a network, or one that thinks first
                asyncio.get_running_loop().call_later(self.delay, self.transport.write, answer)
            else:
                self.transport.write(answer)


def receiver(port: int, delay: float, ready: Any, conn: Any) -> None:
    got: list[tuple[int, int, int, float]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Receive(got, delay), "127.0.0.1", port, backlog=1024
        )
        ready.set()
        while not conn.poll():
            await asyncio.sleep(0.05)
        conn.recv()
        server.close()

    asyncio.run(main())
    conn.send(got)


# -- the world --------------------------------------------------------------------------


async def seed(db: Database, n_leads: int, url: str) -> tuple[int, list[int], list[int]]:
    await upgrade(db)
    async with db.begin() as conn:
        if (
            await conn.execute(select(plans.c.name).where(plans.c.name == "trial"))
        ).first() is None:
            await conn.execute(insert(plans).values(name="trial", label="Trial"))
        company = (
            await conn.execute(
                insert(companies).values(name="bench", plan="trial", created_at=now())
                .returning(companies.c.id)
            )
        ).scalar_one()  # fmt: skip
        lead_ids = [
            r[0]
            for r in await conn.execute(
                insert(leads).returning(leads.c.id),
                [{"company_id": company, "email": f"l{i}@bench.example", "score": 0,
                  "status": "subscribed", "created_at": now()} for i in range(n_leads)],
            )
        ]  # fmt: skip
        message_ids = [
            r[0]
            for r in await conn.execute(
                insert(messages).returning(messages.c.id),
                [{"company_id": company, "lead_id": lead, "subject": "s", "html": "<p>h</p>",
                  "status": "sent", "created_at": now(), "sent_at": now()} for lead in lead_ids],
            )
        ]  # fmt: skip
        newest = await conn.scalar(select(func.max(events.c.id))) or 0
        await conn.execute(
            insert(event_webhooks).values(
                company_id=company, url=url, secret=SECRET, events=["open", "click"],
                verdicts=["human", "proxy"], paused=False, after_event_id=newest,
                created_at=now(), updated_at=now(),
            )
        )  # fmt: skip
    return company, lead_ids, message_ids


def event_rows(company: int, lead_ids: list[int], message_ids: list[int], n: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = i % len(lead_ids)
        rows.append({
            "type": "click" if i % 3 == 0 else "open", "at": now(), "company_id": company,
            "message_id": message_ids[k], "lead_id": lead_ids[k], "campaign_id": None,
            "verdict": "human", "reason": "bench", "inferred": False, "forwarded": False,
            "client": "Thunderbird", "url": "https://example.com/" if i % 3 == 0 else None,
        })  # fmt: skip
    return rows


async def produce(db: Database, rows: list[dict], rate: float) -> dict[int, float]:
    """Commit the events in batches; the wall time each event's batch committed."""
    committed: dict[int, float] = {}
    start = time.monotonic()
    for i in range(0, len(rows), 1000):
        if rate:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        async with db.begin() as conn:
            ids = [r[0] for r in await conn.execute(insert(events).returning(events.c.id),
                                                     rows[i : i + 1000])]  # fmt: skip
        t = time.time()
        committed.update({event_id: t for event_id in ids})
    return committed


async def naive(db: Database, url: str, sample: int) -> float:
    """One POST per event, one after the other, in event order: events/s."""
    async with db.connect() as conn:
        rows = (
            await conn.execute(select(events).order_by(events.c.id).limit(sample))
        ).mappings().all()  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as http:
        t0 = time.perf_counter()
        for i, row in enumerate(rows):
            payload = json.dumps({"id": row["id"], "type": row["type"], "lead_id": row["lead_id"]})
            body = body_of({"id": -1 - i, "webhook_id": 0, "payload": payload}, int(time.time()))
            headers = {"X-Mailbeacon-Signature": sign(SECRET, body),
                       "Content-Type": "application/json"}  # fmt: skip
            (await http.post(url, content=body, headers=headers)).raise_for_status()
        return len(rows) / (time.perf_counter() - t0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s; 0: as fast as it can")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--naive", type=int, default=2000, help="events the naive sender sends")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="the receiver's answer delay")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-webhooks-")
    url = args.database or f"sqlite:///{tmp}/bench.db"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook_url = f"http://127.0.0.1:{port}/hook"
    ctx = multiprocessing.get_context("spawn")
    ready, (mine, theirs) = ctx.Event(), ctx.Pipe()
    delay = args.delay_ms / 1000
    proc = ctx.Process(target=receiver, args=(port, delay, ready, theirs), daemon=True)
    proc.start()
    ready.wait(30)

    db = Database(url)
    company, lead_ids, message_ids = await seed(db, args.leads, hook_url)
    rows = event_rows(company, lead_ids, message_ids, args.events)
    settings = Settings(database_url=url, webhook_allow_private=True)
    settings = _with(settings, event_webhooks_concurrency=args.concurrency)
    stop = asyncio.Event()
    stage = asyncio.create_task(run_forever(db, settings, stop))
    t0 = time.time()
    committed = await produce(db, rows, args.rate)
    t_produced = time.time()
    delivered = 0
    deadline = time.monotonic() + 600
    print(f"produced {args.events} events in {t_produced - t0:.1f} s", file=sys.stderr)
    while delivered < args.events and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        async with db.connect() as conn:
            delivered = await conn.scalar(
                select(func.count()).where(event_webhook_deliveries.c.status == "delivered")
            )
        print(f"  {delivered} delivered after {time.time() - t0:.1f} s", file=sys.stderr)
    stop.set()
    await stage
    reference = await naive(db, hook_url, min(args.naive, args.events))
    await db.dispose()
    mine.send("stop")
    got: list[tuple[int, int, int, float]] = [g for g in mine.recv() if g[2] > 0]
    proc.join(10)

    arrivals: dict[int, float] = {}
    for event_id, _lead, _delivery, at in got:
        arrivals.setdefault(event_id, at)
    last = max(arrivals.values())
    delays = sorted(arrivals[e] - committed[e] for e in arrivals)
    per_lead: dict[int, list[int]] = {}
    for event_id, lead, _delivery, _at in got:
        per_lead.setdefault(lead, []).append(event_id)
    in_order = all(ids == sorted(ids) for ids in per_lead.values())
    rate = len(arrivals) / (last - t0)
    print(f"machine           {machine()}")
    print(f"python            {sys.version.split()[0]}")
    print(f"database          {url.split(':')[0]}")
    print(f"events            {args.events} for {args.leads} leads, one subscription")
    print(f"receiver          answers after {args.delay_ms:g} ms; {args.concurrency} in flight")
    print(f"produced in       {t_produced - t0:.2f} s")
    print(f"arrived           {len(arrivals)} distinct, {len(got)} POSTs; in order: {in_order}")
    print(f"events/s          {rate:,.0f} (first commit to last arrival)")
    print(
        f"naive reference   {reference:,.0f} events/s (one POST at a time; {rate / reference:.1f}x)"
    )
    print(f"delay p50         {statistics.median(delays) * 1000:.0f} ms (commit to arrival)")
    print(f"delay p99         {delays[int(len(delays) * 0.99)] * 1000:.0f} ms")


def _with(settings: Settings, **extra: Any) -> Any:
    """Settings carrying stage knobs it does not declare (as the tests' subclasses do)."""
    from dataclasses import make_dataclass

    cls = make_dataclass(
        "BenchSettings", [(k, type(v), v) for k, v in extra.items()], bases=(type(settings),),
        frozen=True,
    )  # fmt: skip
    return cls(**{f: getattr(settings, f) for f in settings.__dataclass_fields__})


if __name__ == "__main__":
    asyncio.run(main())
