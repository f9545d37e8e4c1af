"""The event webhook sender: POSTs queued deliveries, in order per lead, many leads at once.

A delivery is sent only when it is the *head* of its queue: no older delivery of the same
subscription about the same lead is still pending. So a lead's events arrive in the order
they happened, each waiting until the one before was delivered or given up; different
leads (and different receivers) go concurrently, up to `concurrency` leads at once.
A head and the deliveries queued behind it go as a *chain*: one after the other on the
lead's lane, each only once the one before was answered 2xx, so two queries start many
POSTs and one statement records them.

Finished attempts are recorded together every `flush_every` seconds (one transaction
for many), and a delivery stays in flight, not re-read, until its outcome is committed.
A process killed after a POST and before that commit sends it again: the receiver sees
the same `X-Mailbeacon-Delivery` id and drops it, so each event reaches it once.

The body is `{"webhook_id", "delivery_id", "timestamp", "event": {...}}` (the event as
the API shows it), signed like rule webhooks: `X-Mailbeacon-Signature: sha256=<hex
HMAC-SHA256(secret, raw body)>`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import and_, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.event_backoff import Backoff, EventWebhookTuning
from mailbeacon.automation.event_lanes import Lanes
from mailbeacon.automation.webhooks import sign
from mailbeacon.store import Database, now
from mailbeacon.store.schema_webhooks import event_webhook_deliveries as outbox
from mailbeacon.store.schema_webhooks import event_webhooks

_earlier = outbox.alias("earlier")
_HEAD_COLUMNS = (
    outbox.c.id,
    outbox.c.webhook_id,
    outbox.c.lead_id,
    outbox.c.event_type,
    outbox.c.payload,
    outbox.c.attempts,
    outbox.c.created_at,
    event_webhooks.c.url,
    event_webhooks.c.secret,
)


async def due_heads(
    conn: AsyncConnection, limit: int, busy: set[int], at: dt.datetime
) -> list[dict[str, Any]]:
    """Pending deliveries that are due and first in their (subscription, lead) queue,
    oldest first, leaving out those in flight and those of paused subscriptions."""
    query = (
        select(*_HEAD_COLUMNS)
        .join(event_webhooks, event_webhooks.c.id == outbox.c.webhook_id)
        .where(
            outbox.c.status == "pending",
            outbox.c.next_attempt_at <= at,
            event_webhooks.c.paused.is_(False),
            ~exists().where(
                and_(
                    _earlier.c.webhook_id == outbox.c.webhook_id,
                    _earlier.c.lead_id == outbox.c.lead_id,
                    _earlier.c.status == "pending",
                    _earlier.c.id < outbox.c.id,
                )
            ),
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if busy:
        query = query.where(outbox.c.id.not_in(busy))
    return [dict(r) for r in (await conn.execute(query)).mappings()]


def body_of(row: dict[str, Any], timestamp: int) -> bytes:
    """The JSON body, built around the event as it was serialised when queued."""
    head = (
        f'{{"webhook_id":{row["webhook_id"]},"delivery_id":{row["id"]},'
        f'"timestamp":{timestamp},"event":'
    )
    return head.encode() + row["payload"].encode() + b"}"


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    code: int | None
    error: str | None  # None: delivered (a 2xx)
    refused: bool  # the URL leads inside our network: no retry


async def attempt(lanes: Lanes, row: dict[str, Any]) -> Attempt:
    timestamp = int(time.time())
    body = body_of(row, timestamp)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mailbeacon-webhook/1",
        "X-Mailbeacon-Signature": sign(row["secret"], body),
        "X-Mailbeacon-Timestamp": str(timestamp),
        "X-Mailbeacon-Delivery": str(row["id"]),
        "X-Mailbeacon-Event": row["event_type"],
    }
    try:
        http = lanes.of(int(row["lead_id"]))
        response = await http.post(row["url"], content=body, headers=headers)
    except httpx.TimeoutException:
        return Attempt(row["id"], None, "timed out", False)
    except httpx.HTTPError as e:
        text = f"{type(e).__name__}: {e}"
        return Attempt(row["id"], None, text, "refused:" in text)
    except Exception as e:  # a URL httpx will not take, or a bug: this delivery's, not
        # the sender's (one bad row must not stop every lead's queue)
        return Attempt(row["id"], None, f"{type(e).__name__}: {e}", False)
    if 200 <= response.status_code < 300:
        return Attempt(row["id"], response.status_code, None, False)
    return Attempt(row["id"], response.status_code, f"answered {response.status_code}", False)


def outcome(
    row: dict[str, Any], result: Attempt, backoff: Backoff, at: dt.datetime,
    rand: Callable[[], float] = random.random,
) -> dict[str, Any]:  # fmt: skip
    """The outbox row's new values after this attempt."""
    attempts = int(row["attempts"]) + 1
    values: dict[str, Any] = {
        "b_id": result.id,
        "attempts": attempts,
        "last_status": result.code,
        "last_error": result.error,
        "delivered_at": None,
        "next_attempt_at": at,
        "status": "pending",
    }
    if result.error is None:
        values.update(status="delivered", delivered_at=at)
        return values
    wait = backoff.delay(attempts, rand)
    age = (at - row["created_at"]).total_seconds()
    if result.refused or backoff.gives_up(age, wait):
        values["status"] = "failed"
    else:
        values["next_attempt_at"] = at + dt.timedelta(seconds=wait)
    return values


_RECORD = (
    update(outbox)
    # still pending: a delivery cancelled (its webhook deleted) meanwhile stays cancelled
    .where(outbox.c.id == bindparam("b_id"), outbox.c.status == "pending")
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        last_status=bindparam("last_status"),
        last_error=bindparam("last_error"),
        delivered_at=bindparam("delivered_at"),
        next_attempt_at=bindparam("next_attempt_at"),
    )
)


async def followers(
    conn: AsyncConnection, heads: list[dict[str, Any]], per_head: int
) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """For each head, up to `per_head - 1` pending deliveries queued after it for the same
    (subscription, lead), oldest first: they may follow it on the same connection."""
    chains: dict[tuple[int, int], list[dict[str, Any]]] = {
        (r["webhook_id"], r["lead_id"]): [] for r in heads
    }
    if per_head <= 1 or not heads:
        return chains
    query = (
        select(*_HEAD_COLUMNS)
        .join(event_webhooks, event_webhooks.c.id == outbox.c.webhook_id)
        .where(
            outbox.c.status == "pending",
            outbox.c.lead_id.in_({r["lead_id"] for r in heads}),
            outbox.c.webhook_id.in_({r["webhook_id"] for r in heads}),
            outbox.c.id > min(r["id"] for r in heads),
        )
        .order_by(outbox.c.id)
        .limit(len(heads) * (per_head - 1))
    )
    head_ids = {r["id"] for r in heads}
    for row in (await conn.execute(query)).mappings():
        chain = chains.get((row["webhook_id"], row["lead_id"]))
        if chain is not None and row["id"] not in head_ids and len(chain) < per_head - 1:
            chain.append(dict(row))
    return chains


@dataclass(slots=True)
class Chain:
    """A queue head and the deliveries after it, sent one after the other while each is
    answered 2xx; `results` holds the attempts made so far (a prefix of `rows`)."""

    rows: list[dict[str, Any]]
    results: list[Attempt]


async def send_chain(lanes: Lanes, chain: Chain, budget: float) -> None:
    """POST the chain's deliveries in order, each only once the one before was
    delivered; stop at the first failure, or when `budget` seconds are used (what is
    left waits for the next round, after these outcomes are recorded)."""
    deadline = time.monotonic() + budget
    for row in chain.rows:
        result = await attempt(lanes, row)
        chain.results.append(result)
        if result.error is not None or time.monotonic() > deadline:
            return


class Sender:
    """Deliveries in flight and the loop that keeps them going (one process at a time)."""

    def __init__(self, db: Database, http: Lanes, tuning: EventWebhookTuning) -> None:
        self.db, self.http, self.tuning = db, http, tuning
        self.backoff = tuning.backoff
        self.flight: dict[asyncio.Task[None], Chain] = {}
        self.done: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> set[int]:
        """The queue heads in flight (the rows after them are not heads meanwhile)."""
        return {chain.rows[0]["id"] for chain in self.flight.values()}

    async def start_due(self) -> int:
        """Start chains of POSTs for due queue heads, as many as there is room for: one
        query for the heads, one for the deliveries that may follow them."""
        room = self.tuning.concurrency - len(self.flight)
        if room <= 0:
            return 0
        async with self.db.connect() as conn:
            heads = await due_heads(conn, room, self.busy, now())
            after = await followers(conn, heads, self.tuning.chain)
        for head in heads:
            chain = Chain([head, *after[(head["webhook_id"], head["lead_id"])]], [])
            task = asyncio.create_task(send_chain(self.http, chain, self.tuning.chain_seconds))
            self.flight[task] = chain
        return len(heads)

    async def collect(self, timeout: float) -> None:
        """Wait up to `timeout` for chains to finish, then record what finished."""
        if self.flight:
            finished, _ = await asyncio.wait(
                self.flight, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if finished and len(finished) < len(self.flight):
                await asyncio.sleep(self.tuning.flush_every)  # let more finish: one commit
                finished = {t for t in self.flight if t.done()}
            self.done.update(finished)
        await self.flush()

    async def flush(self) -> None:
        """Commit finished attempts in one statement; only then do their chains leave the
        flight (and a lead's next delivery become its queue head)."""
        if not self.done:
            return
        at = now()
        values = [
            outcome(row, result, self.backoff, at)
            for task in self.done
            for row, result in zip(self.flight[task].rows, self.flight[task].results, strict=False)
        ]
        if values:
            async with self.db.begin() as conn:
                await conn.execute(_RECORD, values)
        for task in self.done:
            del self.flight[task]
        self.done = set()

    async def drain(self, timeout: float) -> None:
        """On stop: let the POSTs in flight finish (up to `timeout`) and record them."""
        deadline = time.monotonic() + timeout
        while self.flight and time.monotonic() < deadline:
            await self.collect(deadline - time.monotonic())
        for task in self.flight:  # what they did so far is recorded; the rest is sent later
            task.cancel()
        self.done.update(self.flight)
        await self.flush()
