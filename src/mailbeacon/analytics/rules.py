"""What one event adds to a campaign's rollups: the report's arithmetic, pure.

CONTRACT.md ("A campaign report") defines every field; this module is where those
definitions become code, so `rollups` (incremental) and tests (naive recomputation)
agree by construction on the inputs and differ only in how they count.

Words used below:
- *human*: verdict `human` or `proxy` (Gmail's image proxy fetches when the reader opens).
- *machine*: verdict `prefetch`, `scanner` or `bot`; recorded and shown, set apart.
- *own*: engagement by the lead themself: not `forwarded`, and not on a friend's copy
  made by forward-to-a-friend. Forwarded engagement is shown but never counted as the
  lead's own (issue 4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbeacon.store.schema_analytics import KEY_MAX, lead_key

HUMAN = frozenset({"human", "proxy"})
MACHINE = frozenset({"prefetch", "scanner", "bot"})
BOT_CLICK = frozenset({"scanner", "bot"})
# Time since the send is kept per hour for 30 days; anything later shares the last bucket.
MAX_HOURS = 24 * 30
# Counters kept per lead: "forwarder", one key per lead whose mail was forwarded (sends
# to a friend, and engagement by detected forwards of their own copy), so a campaign's
# "forwarded" list is one range scan. Keys are zero-padded lead ids: they sort as numbers.
PER_LEAD_DIMS = frozenset({"forwarder"})
UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Fact:
    """An event with what the rollup needs from around it (lead timezone, send time)."""

    id: int
    type: str
    at: dt.datetime
    campaign_id: int
    lead_id: int
    message_id: int
    verdict: str
    company_id: int = 0
    reason: str = ""
    inferred: bool = False
    forwarded: bool = False  # detected forward, or any event on a friend's copy
    friend_copy: bool = False
    client: str | None = None
    device: str | None = None
    os: str | None = None
    country: str | None = None
    ip: str | None = None
    url: str | None = None
    link_index: int | None = None
    lead_tz: str | None = None
    sent_at: dt.datetime | None = None

    @property
    def own(self) -> bool:
        return not self.forwarded and not self.friend_copy

    @property
    def human(self) -> bool:
        return self.verdict in HUMAN


@dataclass(frozen=True, slots=True)
class LeadState:
    """What a lead has done with one campaign's mail (a `rollup_campaign_leads` row)."""

    any_open: bool = False
    human_open: bool = False
    inferred_open: bool = False
    human_click: bool = False
    unsubscribed: bool = False


def advance(state: LeadState, f: Fact) -> LeadState:
    """The lead's state after this event."""
    changes: dict[str, bool] = {}
    if f.type == "open":
        changes["any_open"] = True
        if f.own and f.human:
            changes["inferred_open" if f.inferred else "human_open"] = True
    elif f.type == "click" and f.own and f.human:
        changes["human_click"] = True
    elif f.type == "unsubscribe":
        changes["unsubscribed"] = True
    return replace(state, **changes) if changes else state


def uniques(s: LeadState) -> dict[str, int]:
    """The unique counters this lead contributes to (each 0 or 1)."""
    clicked_or_inferred = s.inferred_open or s.human_click
    return {
        "opens_unique": int(s.any_open),
        "human_opens_unique": int(s.human_open or clicked_or_inferred),
        # The only sign of opening is a human click: images blocked or plain text.
        "inferred_opens": int(clicked_or_inferred and not s.human_open),
        "clicks_unique": int(s.human_click),
        "unsubscribes": int(s.unsubscribed),
    }


def unique_deltas(before: LeadState, after: LeadState) -> dict[str, int]:
    """How the unique counters move; `inferred_opens` can go down when a real open lands."""
    b, a = uniques(before), uniques(after)
    return {k: a[k] - b[k] for k in a if a[k] != b[k]}


_zones: dict[str, ZoneInfo] = {}


def local_time(at: dt.datetime, tz: str | None) -> dt.datetime:
    """Naive UTC to the lead's wall clock (UTC when the lead has no usable timezone)."""
    zone = _zones.get(tz or "UTC")
    if zone is None:
        try:
            zone = ZoneInfo(tz or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        _zones[tz or "UTC"] = zone
    return at.replace(tzinfo=UTC).astimezone(zone)


def hours_since(at: dt.datetime, sent_at: dt.datetime | None) -> int:
    if sent_at is None:
        return 0
    hours = int((at - sent_at).total_seconds() // 3600)
    return min(max(hours, 0), MAX_HOURS)


def reader_of(f: Fact) -> str:
    """Who a forwarded reader is: their address, else what their client looks like."""
    return f.ip or f"{f.client or ''}|{f.os or ''}|{f.country or ''}"


def link_key(index: int | None, url: str | None) -> str:
    return f"{'' if index is None else index}\t{url or ''}"[:KEY_MAX]


def counts(f: Fact) -> list[tuple[str, str]]:
    """The (dimension, key) counters this event adds one to."""
    out: list[tuple[str, str]] = []
    add = out.append
    if f.type == "open":
        add(("n", "opens_total"))
        if f.forwarded:
            add(("n", "forwarded_opens"))
        if f.verdict in MACHINE:
            add(("n", "machine_opens"))
            add(("machine_open_reason", (f.reason or f.verdict)[:KEY_MAX]))
            add(("machine_open_verdict", f.verdict))
            add(("t_machine", str(hours_since(f.at, f.sent_at))))
        elif f.human:
            add(("n", "human_opens"))
            local = local_time(f.at, f.lead_tz)
            add(("hour", str(local.hour)))
            add(("how", str(local.weekday() * 24 + local.hour)))
            add(("t_open", str(hours_since(f.at, f.sent_at))))
            add(("country", f.country or "unknown"))
            if not f.inferred:  # an inferred open carries the browser of the click
                add(("client", f.client or "unknown"))
                add(("device", f.device or "unknown"))
                add(("os", f.os or "unknown"))
    elif f.type == "click":
        if f.human:
            add(("n", "clicks_total"))
            add(("link", link_key(f.link_index, f.url)))
            add(("t_click", str(hours_since(f.at, f.sent_at))))
            if f.forwarded:
                add(("n", "forwarded_clicks"))
        elif f.verdict in BOT_CLICK:
            add(("n", "bot_clicks"))
            add(("bot_click_reason", (f.reason or f.verdict)[:KEY_MAX]))
            add(("bot_click_verdict", f.verdict))
        else:
            add(("n", "other_machine_clicks"))
    elif f.type == "forward":
        add(("n", "forward_sends"))
        add(("forwarder", lead_key(f.lead_id)))
    elif f.type == "unsubscribe":
        add(("n", "unsubscribe_events"))
    if forwarded_reader(f) is not None:
        add(("forwarder", lead_key(f.lead_id)))
    return out


def forwarded_reader(f: Fact) -> str | None:
    """The reader to count once per message, if this is engagement by a detected forward."""
    if f.forwarded and not f.friend_copy and f.human and f.type in ("open", "click"):
        return reader_of(f)[:128]
    return None
