"""Enrich in the multi-machine mode: each worker reads its partitions of the hits stream.

For the partitions it owns (`partitions.Partitions`), a worker runs one loop:

1. It reads each partition from its checkpoint + 1: the partition's durable consumer is
   made again from there whenever a worker takes the partition over (or its loop
   failed), so nothing the previous owner fetched but did not commit is lost and
   nothing it committed is judged twice. What the previous consumer had already
   delivered is counted as redelivered.
2. Each turn fetches up to `partition_batch` hits from every partition, in stream
   order, and holds back, like the single-machine stage, a click younger than
   `CLICK_HOLD_SECONDS` and what follows it, so a scanner's burst over a message's
   links is seen whole.
3. It judges the ready hits against what the database knows of their messages.
4. One PostgreSQL transaction moves each partition's checkpoint (its stream sequence)
   by compare-and-set, first, so a worker that lost a partition writes nothing; then
   inserts the raw hits and their events (both idempotent on the hit id); commits.
5. Then it acknowledges each partition's batch (one ack each: `AckPolicy.ALL`).

Events are numbered in commit order. The consumers of `events` (rollups, automation,
event webhooks) read by id past a cursor; with several workers inserting at once, an id
taken by a transaction that commits later than a higher one would be skipped. So the
event insert takes a transaction-scoped advisory lock held until commit: only the
insert-and-commit is serialised, not the judging, and each lead's events (one partition,
one writer at a time) stay in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.pipeline import CLICK_HOLD_SECONDS, judge_batch, locator_for
from mailbeacon.pipeline.jetstream import StreamHit, connect, decode_hit, ensure_stream, subject
from mailbeacon.pipeline.partitions import Partitions
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.recorder.columns import HIT_COLUMNS
from mailbeacon.settings import Settings
from mailbeacon.store import stages as lease
from mailbeacon.store.bulk import insert_events
from mailbeacon.store.db import Database, now
from mailbeacon.store.privacy import anonymize, anonymizing_companies
from mailbeacon.store.schema import cursors, hits

log = logging.getLogger(__name__)

EVENTS_LOCK = 0x6D62_6576  # "mbev": pg_advisory_xact_lock key for numbering events
REDELIVERED = "enrich:redelivered"  # a counter row in `cursors`, for operators and bench
ACK_WAIT_S = 60.0
REBALANCE_EVERY_FRACTION = 5  # rebalance this many times per lease period


def checkpoint_name(partition: int) -> str:
    return f"enrich:p{partition}"


def consumer_name(partition: int) -> str:
    return f"enrich-p{partition}"


class ForeignFetch(Exception):
    """Another process fetched from this partition's consumer."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition}: another process fetched from its consumer")
        self.partition = partition


class LostPartition(Exception):
    """Another worker moved this partition's checkpoint: stop writing it."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} moved on under us")
        self.partition = partition


@dataclass
class Item:
    hit: StreamHit
    row: tuple[Any, ...]
    msg: Any


@dataclass
class Stats:
    hits: int = 0
    events: int = 0
    redelivered: int = 0
    batches: int = 0
    by_partition: dict[int, int] = field(default_factory=dict)


class PartitionReader:
    """One partition this worker owns: its consumer, checkpoint and fetched hits."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.sub: Any = None
        self.checkpoint = 0
        self.delivered = 0  # the consumer's deliveries to this reader so far
        self.seen_before = 0  # the last sequence the previous consumer had delivered
        self.buffer: list[Item] = []

    async def open(self, db: Database, settings: Settings, js: Any) -> None:
        """Start reading at the checkpoint + 1 (see the module docstring, step 1)."""
        async with db.begin() as conn:
            self.checkpoint = await lease.read_cursor(conn, checkpoint_name(self.partition))
            await lease.read_cursor(conn, REDELIVERED)
        self.seen_before = await _restart_consumer(js, settings, self.partition, self.checkpoint)
        self.sub = await js.pull_subscribe_bind(
            durable=consumer_name(self.partition), stream=settings.nats_stream
        )
        self.buffer = []
        self.delivered = 0

    async def fill(self, n: int, timeout: float, anonymize_ip: bool) -> None:
        if n <= 0:
            return
        msgs = await _fetch(self.sub, n, timeout)
        fresh = []
        for msg in msgs:
            meta = msg.metadata.sequence
            # This reader is its consumer's only fetcher, so deliveries come numbered
            # 1, 2, 3... A gap means another process (one that lost the partition
            # without knowing yet) took some: start again from the checkpoint rather
            # than commit past hits that process may never write.
            if meta.consumer != self.delivered + 1:
                raise ForeignFetch(self.partition)
            self.delivered = meta.consumer
            if meta.stream > self.checkpoint:  # a redelivery of a committed hit: skip
                fresh.append(msg)
        self.buffer += _decode(fresh, anonymize_ip)

    def ready(self) -> list[Item]:
        return _ready(self.buffer)

    async def committed(self, ready: list[Item]) -> None:
        """The batch is in PostgreSQL: move on, and acknowledge it (one ack, AckAll)."""
        self.checkpoint = ready[-1].hit.seq
        del self.buffer[: len(ready)]
        await ready[-1].msg.ack()

    async def close(self) -> None:
        if self.sub is not None:
            with contextlib.suppress(Exception):
                await self.sub.unsubscribe()
        self.sub = None
        self.buffer = []


class PartitionedEnrich:
    """Enrich over this worker's share of the partitions, as a `runner.Stage` batch.

    One batch is one turn for all of this worker's partitions: fetch from each, judge
    everything fetched together, write it in one transaction (a checkpoint per
    partition), then acknowledge each. Per-batch costs (database round trips, the
    event-numbering lock, the commit's fsync) are paid once for all partitions.
    Unleased: the partitions' own leases (`partitions.Partitions`) divide the work.
    """

    def __init__(self) -> None:
        self.nc: Any = None
        self.js: Any = None
        self.locator: Locator | None = None
        self.owner: Partitions | None = None
        self.readers: dict[int, PartitionReader] = {}
        self.stats = Stats()
        self.next_rebalance = 0.0

    async def setup(self, db: Database, settings: Settings) -> None:
        if settings.is_sqlite:
            raise RuntimeError("the multi-machine mode (MAILBEACON_NATS_URL) needs PostgreSQL")
        holder = lease.holder_id()
        self.nc = await connect(settings, name=f"mailbeacon-worker {holder}")
        self.js = self.nc.jetstream(timeout=10)
        await ensure_stream(self.js, settings)
        self.locator = locator_for(settings)
        self.owner = Partitions(db, settings, holder)

    async def teardown(self, db: Database, settings: Settings) -> None:
        await self._close_all()
        if self.owner is not None:
            with contextlib.suppress(Exception):
                await self.owner.release_all()
        if self.locator is not None:
            self.locator.close()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def batch(self, db: Database, settings: Settings) -> int:
        assert self.owner is not None and self.locator is not None
        loop = asyncio.get_running_loop()
        try:
            if loop.time() >= self.next_rebalance:
                await _rebalance(self.owner, self.readers, db, settings, self.js)
                every = settings.partition_lease_seconds / REBALANCE_EVERY_FRACTION
                self.next_rebalance = loop.time() + every
            if not self.readers:
                return 0
            return await _turn(self.readers, db, settings, self.locator, self.stats)
        except LostPartition as lost:
            log.warning("partition %d: another worker took it over", lost.partition)
            await self.readers.pop(lost.partition).close()
            self.owner.owned.discard(lost.partition)
            return 1  # go on at once with the others
        except BaseException:
            # Start every partition again from what is committed: a consumer that failed
            # mid-batch would otherwise skip what it had fetched. (The runner logs it.)
            await self._close_all()
            self.next_rebalance = 0.0
            raise

    async def _close_all(self) -> None:
        for reader in self.readers.values():
            await reader.close()
        self.readers.clear()


def stage(settings: Settings) -> Stage:
    """The enrich stage of the multi-machine mode (`pipeline.stages` picks it when
    MAILBEACON_NATS_URL is set)."""
    run = PartitionedEnrich()
    return Stage(
        "enrich",
        run.batch,
        poll=0.05,  # an idle turn already waited on its fetches
        leased=False,
        setup=run.setup,
        teardown=run.teardown,
    )


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Own a fair share of the partitions and enrich them until `stop` (the runner)."""
    await run_stage(stage(settings), db, settings, stop)


async def _rebalance(
    owner: Partitions,
    readers: dict[int, PartitionReader],
    db: Database,
    settings: Settings,
    js: Any,
) -> None:
    try:
        wanted, extra = await owner.rebalance()
    except Exception:
        # Leases cannot be renewed: stop reading before another worker takes over.
        for reader in readers.values():
            await reader.close()
        readers.clear()
        raise
    for p in [p for p in readers if p not in wanted]:
        await readers.pop(p).close()  # between turns: everything fetched is committed
        if p in extra:
            await owner.release(p)
    for p in sorted(wanted - set(readers)):
        reader = PartitionReader(p)
        await reader.open(db, settings, js)
        readers[p] = reader


async def _turn(
    readers: dict[int, PartitionReader],
    db: Database,
    settings: Settings,
    locator: Locator,
    stats: Stats,
) -> int:
    batch = settings.partition_batch
    idle = all(not r.buffer for r in readers.values())
    await asyncio.gather(
        *(
            r.fill(batch - len(r.buffer), 0.2 if idle else 0.02, settings.anonymize_ip)
            for r in readers.values()
        )
    )
    ready = {p: items for p, r in readers.items() if (items := r.ready())}
    if not ready:
        if not idle:  # only held clicks: look again shortly
            await asyncio.sleep(0.1)
        return 0
    again = {
        p: sum(1 for item in items if item.hit.seq <= readers[p].seen_before)
        for p, items in ready.items()
    }
    checkpoints = {p: readers[p].checkpoint for p in ready}
    written = await commit_batch(db, settings, locator, checkpoints, ready, again)
    for p, items in ready.items():
        await readers[p].committed(items)
        stats.by_partition[p] = stats.by_partition.get(p, 0) + len(items)
        stats.hits += len(items)
    stats.events += written
    stats.redelivered += sum(again.values())
    stats.batches += 1
    return sum(len(items) for items in ready.values())


async def _restart_consumer(js: Any, settings: Settings, partition: int, checkpoint: int) -> int:
    """Make the partition's consumer again at checkpoint + 1; return the last stream
    sequence the previous consumer had delivered (what is re-read up to there was
    delivered twice)."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError

    name = consumer_name(partition)
    delivered = 0
    with contextlib.suppress(NotFoundError):
        info = await js.consumer_info(settings.nats_stream, name)
        delivered = int(info.delivered.stream_seq or 0)
        await js.delete_consumer(settings.nats_stream, name)
    config = ConsumerConfig(
        durable_name=name,
        filter_subject=subject(partition),
        ack_policy=AckPolicy.ALL,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=20_000,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if checkpoint else DeliverPolicy.ALL,
        opt_start_seq=checkpoint + 1 if checkpoint else None,
    )
    await js.add_consumer(settings.nats_stream, config)
    return delivered


async def _fetch(sub: Any, n: int, timeout: float) -> list[Any]:
    from nats.errors import TimeoutError as NatsTimeout

    try:
        return await sub.fetch(n, timeout=timeout)
    except (NatsTimeout, TimeoutError):
        return []


def _decode(msgs: list[Any], anonymize_ip: bool) -> list[Item]:
    items = []
    for msg in msgs:
        seq = msg.metadata.sequence.stream
        try:
            hit, row = decode_hit(msg.data, seq, anonymize_ip)
        except (ValueError, TypeError) as exc:  # not a hit: logged, skipped (and acked later)
            log.error("stream message %d is not a hit (%s); skipped", seq, exc)
            continue
        items.append(Item(hit, row, msg))
    return items


def _ready(buffer: list[Item]) -> list[Item]:
    """The leading items that can be judged now: up to the first click still held."""
    hold = now() - dt.timedelta(seconds=CLICK_HOLD_SECONDS)
    ready = []
    for item in buffer:
        if item.hit.kind == "click" and item.hit.at > hold:
            break
        ready.append(item)
    return ready


async def commit_batch(
    db: Database,
    settings: Settings,
    locator: Locator,
    checkpoints: dict[int, int],
    ready: dict[int, list[Item]],
    redelivered: dict[int, int],
) -> int:
    """Judge and write the ready hits of several partitions; the events written."""
    items = [item for batch in ready.values() for item in batch]
    async with db.connect() as conn:
        stored = [item.hit for item in items]
        new_events, erased = await judge_batch(conn, stored, locator, settings.anonymize_ip)
        # The edge anonymises at capture for these companies; an edge that started
        # while the database was away could not know them yet.
        masked = await anonymizing_companies(conn)
    rows = [
        _hit_row(item.row, item.hit.company_id in masked)
        for item in items
        if item.hit.id not in erased
    ]
    async with db.begin() as conn:
        for p, batch in ready.items():  # first: a worker that lost a partition stops here
            name = checkpoint_name(p)
            if not await lease.move_cursor(conn, name, checkpoints[p], batch[-1].hit.seq):
                raise LostPartition(p)
        if rows:
            await conn.execute(lease.insert_ignore(conn, hits), rows)
        if new_events:
            await lock_event_ids(conn)
            await insert_events(conn, new_events)  # COPY for a big batch
        if again := sum(redelivered.values()):
            await conn.execute(
                update(cursors)
                .where(cursors.c.name == REDELIVERED)
                .values(position=cursors.c.position + again)
            )
    return len(new_events)


async def lock_event_ids(conn: AsyncConnection) -> None:
    """Hold event numbering until this transaction commits (see the module docstring)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK})


_HIT_NAMES = ("id", *HIT_COLUMNS)


def _hit_row(row: tuple[Any, ...], masked: bool) -> dict[str, Any]:
    stored = dict(zip(_HIT_NAMES, row, strict=True))
    if masked:
        stored["ip"] = anonymize(stored["ip"])
    return stored
