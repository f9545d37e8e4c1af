"""The hits stream on NATS JetStream: its shape, the partition of a lead, the wire form of
a hit, and the ids the edges give hits before they exist anywhere else.

One stream (`MAILBEACON_HITS` by default) holds subjects `mailbeacon.hits.<p>` for
partitions p = 0..P-1. A lead's hits always go to the same partition (a stable hash of
company and lead), so one worker reads all of them, in the order JetStream stored them.
P is fixed when the stream is first made and written into its metadata: a process
configured with another P refuses to start, since moving leads between partitions
would let two workers judge one lead's hits at once.

Hit ids. In this mode an edge answers without PostgreSQL, so it cannot take an id from
the database's sequence. Each edge process reserves blocks of ids in a JetStream
key-value entry by compare-and-set (one round trip per `ID_BLOCK` hits) starting at
`ID_BASE`, far above anything the single-machine sequence hands out. The id is the
message's `Nats-Msg-Id` (JetStream drops a re-published duplicate within its window),
the raw hit's primary key in PostgreSQL and the `hit_id` of its events: every write
downstream is idempotent on it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from typing import Any, NamedTuple

import msgspec

from mailbeacon.recorder.batch import Hit
from mailbeacon.recorder.columns import HIT_COLUMNS, stored_row
from mailbeacon.settings import Settings

SUBJECT_PREFIX = "mailbeacon.hits"
ID_BUCKET = "mailbeacon_ids"
ID_KEY = "hits"
ID_BASE = 1 << 40  # the database sequence of a single machine never gets near this
ID_BLOCK = 100_000
DUPLICATE_WINDOW_S = 120.0
MAX_AGE_S = 7 * 24 * 3600.0  # the stream is a buffer; PostgreSQL keeps the record

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list).decode


def partition_of(company_id: int, lead_id: int, partitions: int) -> int:
    """The partition of a lead: stable across processes, machines and Python versions
    (crc32, not `hash`, which is salted per process)."""
    return zlib.crc32(b"%d:%d" % (company_id, lead_id)) % partitions


def subject(partition: int) -> str:
    return f"{SUBJECT_PREFIX}.{partition}"


def encode_hit(hit_id: int, hit: Hit) -> bytes:
    """The message body: the hit's fields as msgpack, headers still bytes."""
    return _encode([hit_id, *hit])


class StreamHit(NamedTuple):
    """A hit read back from the stream, shaped like a row of `hits` (enrich reads it
    exactly as it reads the table), plus the stream sequence it was stored at."""

    id: int
    at: dt.datetime
    kind: str
    company_id: int
    message_id: int
    lead_id: int
    link_index: int | None
    ip: str | None
    user_agent: str | None
    accept_language: str | None
    method: str
    seq: int


def decode_hit(data: bytes, seq: int, anonymize_ip: bool) -> tuple[StreamHit, tuple[Any, ...]]:
    """The hit as enrich reads it, and its `hits` row (`id`, then `HIT_COLUMNS`).

    Raises ValueError for a body that is not a hit (nothing else publishes there; a
    broken one is logged and skipped rather than stopping its partition forever).
    """
    fields = _decode(data)
    if len(fields) != 1 + len(HIT_COLUMNS):
        raise ValueError(f"a hit has {1 + len(HIT_COLUMNS)} fields, this message {len(fields)}")
    hit_id, hit = fields[0], Hit(*fields[1:])
    row = stored_row(hit, anonymize_ip)
    return StreamHit(hit_id, *row, seq), (hit_id, *row)


async def connect(settings: Settings, **options: Any) -> Any:
    """A NATS connection that keeps reconnecting (the edge and workers outlive a NATS
    restart); `nats-py` comes with `mailbeacon[cluster]`."""
    import nats

    servers = [s.strip() for s in (settings.nats_url or "").split(",") if s.strip()]
    return await nats.connect(
        servers=servers,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=2,
        name=options.pop("name", "mailbeacon"),
        **options,
    )


async def ensure_stream(js: Any, settings: Settings) -> None:
    """Create the hits stream if it is missing; refuse a stream made with another P."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    name = settings.nats_stream
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        config = StreamConfig(
            name=name,
            description="mailbeacon raw hits, partitioned by lead",
            subjects=[f"{SUBJECT_PREFIX}.*"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=settings.nats_replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            max_age=MAX_AGE_S,
            discard=DiscardPolicy.OLD,
            metadata={"partitions": str(settings.partitions)},
        )
        try:
            await js.add_stream(config)
            return
        except Exception:  # another process made it first: check it like any other
            info = await js.stream_info(name)
    made_with = (info.config.metadata or {}).get("partitions")
    if made_with is not None and int(made_with) != settings.partitions:
        raise RuntimeError(
            f"stream {name} was made with {made_with} partitions, this process is set to "
            f"{settings.partitions} (MAILBEACON_PARTITIONS): leads would change partition"
        )


class HitIds:
    """Ids for this process's hits, a reserved block at a time (see the module docstring).
    `take()` never waits: the next block is reserved while half of this one is left."""

    def __init__(self, kv: Any, block: int = ID_BLOCK) -> None:
        self.kv, self.block = kv, block
        self._next = self._end = 0
        self._spare: tuple[int, int] | None = None
        self._refill: asyncio.Task[None] | None = None

    async def start(self) -> None:
        start = await reserve(self.kv, self.block)
        self._next, self._end = start, start + self.block

    def take(self) -> int:
        if self._next >= self._end:
            if self._spare is None:
                raise LookupError("no hit ids reserved (NATS unreachable?)")
            (self._next, self._end), self._spare = self._spare, None
        hit_id = self._next
        self._next += 1
        left = self._end - self._next
        if left < self.block // 2 and self._spare is None and self._refill is None:
            self._refill = asyncio.get_running_loop().create_task(self._reserve_spare())
        return hit_id

    async def _reserve_spare(self) -> None:
        try:
            while self._spare is None:
                try:
                    start = await reserve(self.kv, self.block)
                    self._spare = (start, start + self.block)
                except Exception:
                    await asyncio.sleep(0.5)  # NATS is away; the edge answers 503 meanwhile
        finally:
            self._refill = None


async def id_store(js: Any, settings: Settings) -> Any:
    """The key-value bucket that holds the next free hit id."""
    from nats.js.api import KeyValueConfig, StorageType
    from nats.js.errors import BucketNotFoundError

    try:
        return await js.key_value(ID_BUCKET)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=ID_BUCKET,
            history=1,
            storage=StorageType.FILE,
            replicas=settings.nats_replicas,
        )
        try:
            return await js.create_key_value(config)
        except Exception:
            return await js.key_value(ID_BUCKET)


async def reserve(kv: Any, block: int) -> int:
    """The first id of a block of `block` ids no other process will get."""
    from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

    while True:
        try:
            entry = await kv.get(ID_KEY)
        except KeyNotFoundError:
            try:
                await kv.create(ID_KEY, str(ID_BASE + block).encode())
                return ID_BASE
            except KeyWrongLastSequenceError:
                continue
        first = int(entry.value)
        try:
            await kv.update(ID_KEY, str(first + block).encode(), last=entry.revision)
            return first
        except KeyWrongLastSequenceError:
            continue  # another process took this block; read again
