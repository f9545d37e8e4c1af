"""What the pipeline must know about a message to judge its next hits.

Rebuilt from the database for each batch (messages, links, recent clicks and the events
already written), so a restart, a second runner or a rebuild all see the same facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.enrich.forwards import Reader, Readers
from mailbeacon.enrich.networks import reader_network
from mailbeacon.enrich.repeats import FOLD_SECONDS, RepeatOpens
from mailbeacon.enrich.verdict import BURST_SECONDS, COUNTS_AS_HUMAN
from mailbeacon.store.dialect import one_of
from mailbeacon.store.schema import events, hits, leads, message_links, messages


@dataclass(frozen=True, slots=True)
class Click:
    at: dt.datetime
    ip: str | None
    link_index: int | None


@dataclass(slots=True)
class MessageState:
    sent_at: dt.datetime | None = None
    campaign_id: int | None = None
    # A forward-to-a-friend copy (forwarded_from_message_id set): its readers are all
    # forwarded readers of the campaign, never the lead it was first sent to.
    friend_copy: bool = False
    links: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (kind, url)
    clicks: list[Click] = field(default_factory=list)
    readers: Readers = field(default_factory=Readers)
    repeats: RepeatOpens = field(default_factory=RepeatOpens)
    opened: bool = False  # a human, proxy or inferred open exists
    # Network block -> operating systems (None: unknown) of the message's human opens
    # from there: a click from the same reader is theirs (see verdict.py, step 2).
    human_opens: dict[str, set[str | None]] = field(default_factory=dict)

    def link(self, index: int | None) -> tuple[str | None, str | None]:
        kind, url = self.links.get(index, (None, None)) if index is not None else (None, None)
        return kind, url

    def burst(self, at: dt.datetime, ip: str | None) -> tuple[int, bool]:
        """Distinct links this address clicked within the burst window, and the honeypot."""
        window = dt.timedelta(seconds=BURST_SECONDS)
        indexes = {c.link_index for c in self.clicks if c.ip == ip and abs(c.at - at) <= window}
        honeypot = any(self.link(i)[0] == "honeypot" for i in indexes)
        return max(len(indexes), 1), honeypot

    def opened_by_a_person(self, ip: str | None, os: str | None) -> None:
        """Remember a human (not inferred) open of this message from this address."""
        network = reader_network(ip)
        if network is not None:
            self.human_opens.setdefault(network, set()).add(os)

    def opened_here(self, ip: str | None) -> tuple[str | None, ...]:
        """The operating systems of the human opens from this address's network."""
        network = reader_network(ip)
        found = self.human_opens.get(network, ()) if network is not None else ()
        return tuple(found)


async def load_states(
    conn: AsyncConnection, message_ids: Iterable[int], first: dt.datetime, last: dt.datetime
) -> dict[int, MessageState]:
    ids = sorted(set(message_ids))
    states = {m: MessageState() for m in ids}
    for row in await conn.execute(
        select(
            messages.c.id,
            messages.c.sent_at,
            messages.c.created_at,
            messages.c.campaign_id,
            messages.c.forwarded_from_message_id,
        ).where(one_of(conn, messages.c.id, ids))
    ):
        states[row.id].sent_at = row.sent_at
        states[row.id].campaign_id = row.campaign_id
        states[row.id].friend_copy = row.forwarded_from_message_id is not None
    for row in await conn.execute(
        select(message_links).where(one_of(conn, message_links.c.message_id, ids))
    ):
        states[row.message_id].links[row.link_index] = (row.kind, row.url)
    window = dt.timedelta(seconds=BURST_SECONDS)
    for row in await conn.execute(
        select(hits.c.message_id, hits.c.at, hits.c.ip, hits.c.link_index)
        .where(one_of(conn, hits.c.message_id, ids), hits.c.kind == "click")
        .where(hits.c.at >= first - window, hits.c.at <= last + window)
    ):
        states[row.message_id].clicks.append(Click(row.at, row.ip, row.link_index))
    # Only what earlier events can still change is read back: the human ones in order
    # (forward detection), the last open of each source recent enough to fold a repeat
    # into, and whether the message was opened at all. Replaying every event made a
    # message hit thousands of times (a bot, a scanner) cost O(its events) per batch.
    for row in await conn.execute(
        select(
            events.c.message_id,
            events.c.type,
            events.c.verdict,
            events.c.inferred,
            events.c.forwarded,
            events.c.ip,
            events.c.client,
            events.c.country,
            events.c.os,
            events.c.at,
        )
        .where(one_of(conn, events.c.message_id, ids), events.c.type.in_(("open", "click")))
        .where(events.c.verdict == "human")
        .order_by(events.c.id)
    ):
        _replay(states[row.message_id], row)
    fold_from = first - dt.timedelta(seconds=FOLD_SECONDS)
    for row in await conn.execute(
        select(events.c.message_id, events.c.ip, events.c.client, func.max(events.c.at))
        .where(one_of(conn, events.c.message_id, ids), events.c.type == "open")
        .where(events.c.inferred.is_(False), events.c.at >= fold_from)
        .group_by(events.c.message_id, events.c.ip, events.c.client)
    ):
        states[row[0]].repeats.kept((row[1], row[2]), _datetime(row[3]))
    for row in await conn.execute(
        select(events.c.message_id)
        .where(one_of(conn, events.c.message_id, ids), events.c.type == "open")
        .where(or_(events.c.verdict.in_(COUNTS_AS_HUMAN), events.c.inferred.is_(True)))
        .distinct()
    ):
        states[row.message_id].opened = True
    return states


def _datetime(value: dt.datetime | str) -> dt.datetime:
    """max() over a DateTime column: SQLite hands back its stored text."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def _replay(state: MessageState, row) -> None:  # type: ignore[no-untyped-def]
    if row.type == "open":
        if row.verdict in COUNTS_AS_HUMAN or row.inferred:
            state.opened = True
        if not row.inferred:
            state.repeats.kept((row.ip, row.client), row.at)
    if row.verdict != "human" or row.inferred:
        return
    if row.type == "open":
        state.opened_by_a_person(row.ip, row.os)
    network = reader_network(row.ip)
    if row.forwarded:
        if network:
            state.readers.other_networks.add(network)
    else:
        state.readers.observe(Reader(network, row.client, row.country), row.type)


async def live_mail(
    conn: AsyncConnection, pairs: Iterable[tuple[int, int]]
) -> set[tuple[int, int]]:
    """The (message, lead) pairs of tokens that still name a lead: the lead exists and
    the message is theirs. An erased lead's mail belongs to the placeholder, so its hits
    record nothing, even once a new lead has taken the freed id (crm.erase)."""
    pairs = set(pairs)
    lead_ids = sorted({lead for _, lead in pairs})
    live = {
        r.id
        for r in await conn.execute(select(leads.c.id).where(one_of(conn, leads.c.id, lead_ids)))
    }
    owner = {
        r.id: r.lead_id
        for r in await conn.execute(
            select(messages.c.id, messages.c.lead_id).where(
                one_of(conn, messages.c.id, sorted({m for m, _ in pairs}))
            )
        )
    }
    return {(m, lead) for m, lead in pairs if lead in live and owner.get(m, lead) == lead}
