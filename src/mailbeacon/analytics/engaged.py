"""Who engaged with a campaign: its leads by engagement, one keyset page at a time.

The definitions are the campaign report's (CONTRACT.md, `analytics.rules`), read from
the same per-lead rollup (`rollup_campaign_leads`), so a list and its report count
agree:

- `opened`: a human or proxy open, or an open inferred from a human click
  (the leads behind `human_opens_unique`);
- `clicked`: a human click (`clicks_unique`);
- `forwarded`: the lead forwarded it to a friend, or another reader of their own copy
  was detected (`forwards`): the rollup's per-lead "forwarder" counters;
- `privacy_protected`: not opened, but a privacy proxy (Apple Mail Privacy Protection)
  prefetched their pixel: whether they read it is unknown;
- `not_opened`: sent (delivered to the SMTP server), not unsubscribed from it, not
  unsubscribed or bounced since, and not opened; privacy-protected leads are in it;
- `unsubscribed`: unsubscribed from this campaign's mail (`unsubscribes`);
- `bounced`: the campaign's message to them failed.

Pages are keyset pages in lead id order: the cursor carries the last lead id, so page
2,000 costs what page 1 costs. Each page is two steps: the lead ids, from one index
range scan (the rollup's primary key, or the messages by lead), then the detail of
just those leads: their message's event groups (`rollup_message_events`, kept by the
rollups stage), a few rows per lead however many events they caused. No page reads
the events table.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.report import privacy_prefetched
from mailbeacon.analytics.rules import BOT_CLICK, HUMAN, MACHINE, lead_key
from mailbeacon.crm.campaigns import get_campaign
from mailbeacon.crm.errors import Invalid
from mailbeacon.store.render import iso
from mailbeacon.store.schema import leads, messages
from mailbeacon.store.schema_analytics import (
    rollup_campaign_leads,
    rollup_counts,
    rollup_message_events,
)

ENGAGEMENTS = (
    "opened",
    "clicked",
    "forwarded",
    "not_opened",
    "privacy_protected",
    "unsubscribed",
    "bounced",
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# What a CSV export carries, in this order (urls joined with spaces).
CSV_COLUMNS = (
    "lead_id",
    "email",
    "first_name",
    "last_name",
    "opens",
    "clicks",
    "first_open_at",
    "last_open_at",
    "urls",
    "machine_opens",
    "bot_clicks",
    "forwards",
    "status",
    "reason",
)
GONE = ("unsubscribed", "bounced")  # lead statuses no mail goes to any more

r = rollup_campaign_leads
m = messages
OPENED = or_(r.c.human_open, r.c.inferred_open, r.c.human_click)


# --- cursors -----------------------------------------------------------------------


def encode_cursor(engagement: str, lead_id: int) -> str:
    raw = json.dumps([engagement, lead_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(engagement: str, cursor: str | None) -> int:
    """The last lead id of the previous page (0: the first page); 422 for a cursor that
    is not ours or that was made for another engagement."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, last = json.loads(raw)
        if made_for != engagement or not isinstance(last, int) or not 0 <= last < 2**31:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "cursor is not valid for this engagement; start again without it", field="cursor"
        ) from None
    return last


def check_engagement(engagement: str) -> str:
    if engagement not in ENGAGEMENTS:
        raise Invalid(f"engagement must be one of {', '.join(ENGAGEMENTS)}", field="engagement")
    return engagement


# --- which leads -------------------------------------------------------------------


def _rollup_ids(campaign_id: int, after: int, *where: Any) -> Select[Any]:
    """Lead ids from the rollup's primary key (campaign_id, lead_id), in order."""
    return (
        select(r.c.lead_id)
        .where(r.c.campaign_id == campaign_id, r.c.lead_id > after, *where)
        .order_by(r.c.lead_id)
    )


def _own_messages(campaign_id: int, after: int, *where: Any) -> Select[Any]:
    """Lead ids of the campaign's own sends (not friends' copies), in lead order."""
    return (
        select(m.c.lead_id)
        .where(
            m.c.campaign_id == campaign_id,
            m.c.forwarded_from_message_id.is_(None),
            m.c.lead_id > after,
            *where,
        )
        .order_by(m.c.lead_id)
    )


def lead_ids_query(engagement: str, campaign_id: int, after: int) -> Select[Any]:
    """The query for the lead ids of one engagement after `after`, in lead id order."""
    c = campaign_id
    if engagement == "opened":
        return _rollup_ids(c, after, OPENED)
    if engagement == "clicked":
        return _rollup_ids(c, after, r.c.human_click)
    if engagement == "unsubscribed":
        return _rollup_ids(c, after, r.c.unsubscribed)
    if engagement == "privacy_protected":
        return _rollup_ids(c, after, r.c.any_open, ~OPENED, privacy_prefetched(c))
    if engagement == "bounced":
        return _own_messages(c, after, m.c.status == "failed")
    if engagement == "not_opened":
        engaged = exists(
            select(r.c.lead_id).where(
                r.c.campaign_id == c, r.c.lead_id == m.c.lead_id, or_(OPENED, r.c.unsubscribed)
            )
        )
        gone = exists(select(leads.c.id).where(leads.c.id == m.c.lead_id, leads.c.status.in_(GONE)))
        return _own_messages(c, after, m.c.status == "sent", ~engaged, ~gone)
    if engagement == "forwarded":
        t = rollup_counts
        return (
            select(t.c.key)
            .where(t.c.campaign_id == c, t.c.dim == "forwarder", t.c.key > lead_key(after))
            .order_by(t.c.key)
        )
    raise Invalid(f"engagement must be one of {', '.join(ENGAGEMENTS)}", field="engagement")


# --- what each did -----------------------------------------------------------------


@dataclass
class Detail:
    """What one lead did with the campaign's mail, folded from their grouped events."""

    opens: int = 0  # own human/proxy opens, inferred ones included
    clicks: int = 0  # own human clicks
    machine_opens: int = 0
    bot_clicks: int = 0
    forward_sends: int = 0
    forwarded_reads: int = 0  # opens and clicks by other readers of their copy
    first_open_at: dt.datetime | None = None
    last_open_at: dt.datetime | None = None
    urls: dict[str, dt.datetime] = field(default_factory=dict)  # url -> first click
    verdicts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reasons: dict[str, str] = field(default_factory=dict)
    open_clients: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    prefetch_clients: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    human_open: bool = False  # an open that is not inferred
    inferred: bool = False
    proxy: bool = False

    def add(self, g: Any) -> None:
        """Fold in one group: (type, verdict, inferred, forwarded, url, client) and its
        count, first and last time, and one of its reasons."""
        n = int(g.n)
        if g.type in ("open", "click"):
            self.verdicts[g.verdict] += n
            if g.verdict in MACHINE or g.verdict in BOT_CLICK:
                self.reasons.setdefault(g.verdict, g.reason or g.verdict)
        if g.type == "forward":
            self.forward_sends += n
        elif g.forwarded and g.verdict in HUMAN and g.type in ("open", "click"):
            self.forwarded_reads += n
        elif g.type == "open" and g.verdict in HUMAN:
            self.opens += n
            first, last = g.first_at, g.last_at
            self.first_open_at = (
                first if self.first_open_at is None else min(first, self.first_open_at)
            )
            self.last_open_at = last if self.last_open_at is None else max(last, self.last_open_at)
            if g.inferred:
                self.inferred = True
            else:
                self.human_open = True
                self.proxy = self.proxy or g.verdict == "proxy"
                self.open_clients[g.client or "an unknown client"] += n
        elif g.type == "open" and g.verdict in MACHINE:
            self.machine_opens += n
            if g.verdict == "prefetch":
                self.prefetch_clients[g.client or "Apple Mail"] += n
        elif g.type == "click" and g.verdict in HUMAN:
            self.clicks += n
            if g.url:
                seen = self.urls.get(g.url)
                self.urls[g.url] = g.first_at if seen is None else min(seen, g.first_at)
        elif g.type == "click" and g.verdict in BOT_CLICK:
            self.bot_clicks += n


def _top(counts: dict[str, int]) -> str:
    names = sorted(counts, key=lambda k: (-counts[k], k))
    return " and ".join(names[:2])


def reason(d: Detail, status: str | None, error: str | None, unsubscribed: bool) -> str:
    """Why the lead is where they are, in a marketer's words."""
    parts: list[str] = []
    if status == "failed":
        parts.append(f"bounced: {error}" if error else "bounced")
    if d.human_open:
        how = f"opened in {_top(d.open_clients)}"
        if d.proxy:
            how += " (through the mail provider's image proxy: a real open, place unknown)"
        parts.append(how)
    elif d.inferred or d.clicks:
        parts.append("clicked with images off: the open is inferred from the click")
    if d.clicks:
        parts.append(f"clicked {len(d.urls) or d.clicks} link{'s' if len(d.urls) != 1 else ''}")
    if d.prefetch_clients:
        if d.human_open or d.inferred or d.clicks:
            parts.append(f"also prefetched by {_top(d.prefetch_clients)}'s privacy protection")
        else:
            parts.append(f"opened in {_top(d.prefetch_clients)}; privacy prefetch only")
    for verdict in ("scanner", "bot"):
        if d.verdicts.get(verdict):
            parts.append(
                f"{d.verdicts[verdict]} {verdict} hit{'s' if d.verdicts[verdict] != 1 else ''}"
                f" set apart ({d.reasons.get(verdict, verdict)})"
            )
    if d.forward_sends:
        parts.append("forwarded it to a friend")
    if d.forwarded_reads:
        parts.append("another reader of their copy opened it (forwarded)")
    if unsubscribed:
        parts.append("unsubscribed")
    if not parts:
        parts.append("no sign of opening yet" if status == "sent" else f"message {status}")
    return "; ".join(parts)


async def _details(
    conn: AsyncConnection, campaign_id: int, lead_ids: list[int]
) -> list[dict[str, Any]]:
    """The items of one page, in the order of `lead_ids`: two queries, one for the leads
    with their message and rollup row, one for their messages' event groups."""
    if not lead_ids:
        return []
    c = campaign_id
    rows = await conn.execute(
        select(
            leads.c.id,
            leads.c.email,
            leads.c.first_name,
            leads.c.last_name,
            leads.c.status.label("lead_status"),
            m.c.id.label("message_id"),
            m.c.status,
            m.c.error,
            m.c.forwarded_from_message_id,
            r.c.human_open,
            r.c.inferred_open,
            r.c.human_click,
            r.c.unsubscribed,
        )
        .select_from(
            leads.outerjoin(m, and_(m.c.lead_id == leads.c.id, m.c.campaign_id == c)).outerjoin(
                r, and_(r.c.lead_id == leads.c.id, r.c.campaign_id == c)
            )
        )
        .where(leads.c.id.in_(lead_ids))
        .order_by(m.c.id)
    )
    # One row per lead: their own send first (a friend has only a copy).
    people: dict[int, Any] = {}
    for row in rows:
        kept = people.get(row.id)
        if kept is None or (kept.forwarded_from_message_id and not row.forwarded_from_message_id):
            people[row.id] = row
    by_message = {p.message_id: Detail() for p in people.values() if p.message_id is not None}
    if by_message:
        g = rollup_message_events
        groups = await conn.execute(
            select(
                g.c.message_id,
                g.c.type,
                g.c.verdict,
                g.c.inferred,
                g.c.forwarded,
                g.c.url,
                g.c.client,
                g.c.n,
                g.c.first_at,
                g.c.last_at,
                g.c.reason,
            )
            .where(g.c.message_id.in_(list(by_message)))
            # One order, so the reason kept per verdict is the same on every page load.
            .order_by(g.c.message_id, g.c.type, g.c.verdict, g.c.client, g.c.link_index)
        )
        for g in groups:
            by_message[g.message_id].add(g)
    return [_item(i, people.get(i), by_message) for i in lead_ids]


def _item(lead_id: int, p: Any, by_message: dict[int, Detail]) -> dict[str, Any]:
    """One lead's entry; `p` is their row (lead, message, rollup flags), None if erased."""
    message_id = p.message_id if p is not None else None
    d = by_message.get(message_id, Detail()) if message_id is not None else Detail()
    friend_copy = p is not None and p.forwarded_from_message_id is not None
    if friend_copy:  # a friend's reading of a forward is never their own
        d.forwarded_reads += d.opens + d.clicks
        d.opens = d.clicks = 0
        d.human_open = d.inferred = False
        d.first_open_at = d.last_open_at = None
        d.urls = {}
        d.open_clients = defaultdict(int)
    status = p.status if p is not None else None
    unsubscribed = bool(p is not None and p.unsubscribed)
    opened = bool(p is not None and (p.human_open or p.inferred_open or p.human_click))
    lead_status = p.lead_status if p is not None else None
    engagement = [
        name
        for name, yes in (
            ("opened", opened),
            ("clicked", bool(p is not None and p.human_click)),
            ("forwarded", bool(d.forward_sends or d.forwarded_reads) and not friend_copy),
            (
                "not_opened",
                status == "sent"
                and not friend_copy
                and not opened
                and not unsubscribed
                and lead_status not in GONE,
            ),
            ("privacy_protected", not opened and bool(d.prefetch_clients)),
            ("unsubscribed", unsubscribed),
            ("bounced", status == "failed" and not friend_copy),
        )
        if yes
    ]
    return {
        "lead_id": lead_id,
        "email": p.email if p is not None else None,
        "first_name": p.first_name if p is not None else None,
        "last_name": p.last_name if p is not None else None,
        "opens": d.opens,
        "clicks": d.clicks,
        "first_open_at": iso(d.first_open_at),
        "last_open_at": iso(d.last_open_at),
        "urls": sorted(d.urls, key=lambda u: (d.urls[u], u)),
        "machine_opens": d.machine_opens,
        "bot_clicks": d.bot_clicks,
        "forwards": d.forward_sends + (1 if d.forwarded_reads and not friend_copy else 0),
        "verdicts": dict(sorted(d.verdicts.items())),
        "reasons": dict(sorted(d.reasons.items())),
        "reason": reason(d, status, p.error if p is not None else None, unsubscribed),
        "engagement": engagement,
        "message_id": message_id,
        "status": status,
        "lead_status": lead_status,
        "friend_copy": friend_copy,
    }


# --- the page ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def engaged_leads(
    conn: AsyncConnection,
    company_id: int,
    campaign_id: int,
    engagement: str,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """One page of the campaign's leads with this engagement (crm's NotFound for a
    campaign of another company)."""
    check_engagement(engagement)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    after = decode_cursor(engagement, cursor)
    await get_campaign(conn, company_id, campaign_id)
    rows = await conn.execute(lead_ids_query(engagement, campaign_id, after).limit(limit + 1))
    ids = list(dict.fromkeys(int(x) for x in rows.scalars()))  # a lead mailed twice, once
    more = len(ids) > limit
    ids = ids[:limit]
    items = await _details(conn, campaign_id, ids)
    return Page(items, encode_cursor(engagement, ids[-1]) if more else None)


def csv_row(item: dict[str, Any]) -> list[Any]:
    return [" ".join(item["urls"]) if k == "urls" else item.get(k) for k in CSV_COLUMNS]
