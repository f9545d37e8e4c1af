"""The campaign report: CONTRACT.md's fields, read from the rollups in one range scan.

`build_report` is pure arithmetic over the counters, so the API, the CLI, the dashboard
and its live feed all show the same numbers from the same function.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.analytics.estimate import Counts, counts_from_groups, estimate_open_rate
from mailbeacon.analytics.rules import MAX_HOURS
from mailbeacon.crm.campaigns import get_campaign
from mailbeacon.store.schema import messages
from mailbeacon.store.schema_analytics import (
    rollup_campaign_leads,
    rollup_counts,
    rollup_message_events,
)

Counters = dict[str, dict[str, int]]

# Why each machine verdict is kept out of the human numbers, in the user's words.
SET_APART = {
    "prefetch": "fetched by a privacy proxy (Apple Mail Privacy Protection) whether or not "
    "the reader opened the email",
    "scanner": "a security scanner fetched the email or followed its links before delivery",
    "bot": "a crawler, script or link checker, not a person",
}
UNIQUE_FIELDS = (
    "opens_unique",
    "human_opens_unique",
    "inferred_opens",
    "clicks_unique",
    "unsubscribes",
)


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


@dataclass(frozen=True, slots=True)
class Untracked:
    """Recipients whose mail did not track them (`messages.track_opens` /
    `track_clicks` false: the lead is not tracked, or the campaign switched it off).
    They are left out of the rates' denominators: nothing of theirs could be seen."""

    opens: int = 0  # the report's `not_tracked`: no pixel in their mail
    clicks: int = 0  # `clicks_not_tracked`: no tracked link in their mail


def _series(counters: Counters, dims: tuple[str, ...]) -> dict[str, list[int]]:
    """Hourly series since the send, up to the last hour with anything in it."""
    last = max((int(k) for d in dims for k in counters.get(d, {})), default=-1)
    hours = list(range(min(last, MAX_HOURS) + 1))
    out: dict[str, list[int]] = {"hours": hours}
    for d in dims:
        out[d] = [counters.get(d, {}).get(str(h), 0) for h in hours]
    return out


def _links(counters: Counters) -> list[dict[str, Any]]:
    rows = []
    for key, n in counters.get("link", {}).items():
        index, _, url = key.partition("\t")
        rows.append({"index": int(index) if index else None, "url": url, "clicks": n})
    return sorted(rows, key=lambda r: (-r["clicks"], r["index"] if r["index"] is not None else -1))


def _by(counters: Counters, dim: str) -> dict[str, int]:
    return dict(sorted(counters.get(dim, {}).items(), key=lambda kv: (-kv[1], kv[0])))


def estimate_fields(counts: Counts) -> dict[str, Any]:
    """The estimated true open rate, beside (never instead of) the observed `open_rate`."""
    est = estimate_open_rate(counts)
    return {
        "privacy_protected": counts.privacy_protected,
        "estimated_open_rate": est.rate,
        "estimated_open_rate_interval": [est.low, est.high],
        "estimate": est.explanation(),
    }


def build_report(
    campaign_id: int,
    sent: int,
    counters: Counters,
    groups: Counts,
    untracked: Untracked = Untracked(),
) -> dict[str, Any]:
    """The report from the counters and the recipients by what is known of them
    (`estimate_counts`, over the tracked recipients only); the contract's fields first,
    then the detail. Open rates are over the recipients whose opens were tracked, the
    click rate over those whose clicks were."""
    n = counters.get("n", {})
    human_unique = n.get("human_opens_unique", 0)
    clicks_unique = n.get("clicks_unique", 0)
    how = counters.get("how", {})
    over_time = _series(counters, ("t_open", "t_click", "t_machine"))
    return {
        "campaign_id": campaign_id,
        "sent": sent,
        "opens_total": n.get("opens_total", 0),
        "opens_unique": n.get("opens_unique", 0),
        "human_opens_unique": human_unique,
        "machine_opens": n.get("machine_opens", 0),
        "inferred_opens": n.get("inferred_opens", 0),
        "clicks_total": n.get("clicks_total", 0),
        "clicks_unique": clicks_unique,
        "bot_clicks": n.get("bot_clicks", 0),
        "forwards": n.get("forward_sends", 0) + n.get("forwarded_readers", 0),
        "unsubscribes": n.get("unsubscribes", 0),
        "open_rate": _ratio(human_unique, sent - untracked.opens),
        "click_rate": _ratio(clicks_unique, sent - untracked.clicks),
        "click_to_open_rate": _ratio(clicks_unique, human_unique),
        "not_tracked": untracked.opens,
        "clicks_not_tracked": untracked.clicks,
        **estimate_fields(groups),
        # Human opens (human, proxy, inferred) by hour of day in each lead's timezone.
        "by_hour": [counters.get("hour", {}).get(str(h), 0) for h in range(24)],
        "by_client": _by(counters, "client"),
        "by_device": _by(counters, "device"),
        "by_country": _by(counters, "country"),
        "by_os": _by(counters, "os"),
        "human_opens": n.get("human_opens", 0),
        "forward_sends": n.get("forward_sends", 0),
        "forwarded_readers": n.get("forwarded_readers", 0),
        "machine_opens_by_verdict": _by(counters, "machine_open_verdict"),
        "machine_opens_by_reason": _by(counters, "machine_open_reason"),
        "bot_clicks_by_verdict": _by(counters, "bot_click_verdict"),
        "bot_clicks_by_reason": _by(counters, "bot_click_reason"),
        "set_apart": SET_APART,
        "over_time": {
            "hours_since_send": over_time["hours"],
            "human_opens": over_time["t_open"],
            "clicks": over_time["t_click"],
            "machine_opens": over_time["t_machine"],
        },
        # 7 rows (Monday first) of 24 hours, lead's local time.
        "heatmap": [[how.get(str(d * 24 + h), 0) for h in range(24)] for d in range(7)],
        "links": _links(counters),
    }


async def read_counters(conn: AsyncConnection, campaign_id: int) -> Counters:
    rows = await conn.execute(
        select(rollup_counts.c.dim, rollup_counts.c.key, rollup_counts.c.n).where(
            rollup_counts.c.campaign_id == campaign_id
        )
    )
    out: Counters = defaultdict(dict)
    for dim, key, n in rows:
        out[dim][key] = int(n)
    return dict(out)


def privacy_prefetched(campaign_id: int) -> Any:
    """EXISTS an Apple privacy prefetch of the lead's own copy: a probe of the primary
    key of `rollup_message_events` (message, type, verdict), never the events."""
    r, mine, g = rollup_campaign_leads, messages.alias("mine"), rollup_message_events
    return exists(
        select(g.c.message_id)
        .select_from(mine.join(g, g.c.message_id == mine.c.id))
        .where(
            mine.c.campaign_id == campaign_id,
            mine.c.lead_id == r.c.lead_id,
            mine.c.forwarded_from_message_id.is_(None),
            g.c.type == "open",
            g.c.verdict == "prefetch",
            g.c.forwarded.is_(False),
        )
    )


async def estimate_counts(conn: AsyncConnection, campaign_id: int, sent: int) -> Counts:
    """Recipients by visible open, click and privacy prefetch: one pass over the per-lead
    rollup, with a probe of the event groups only for leads with no visible open.

    `clicked` is the rollups' own sign of an opener (a human click or an inferred open),
    so the counts add up to the report's `human_opens_unique` and `inferred_opens`: a
    prefetched lead who clicks is an inferred opener, not privacy-protected.
    """
    r = rollup_campaign_leads
    clicked = or_(r.c.human_click, r.c.inferred_open)
    prefetched = and_(r.c.human_open == false(), privacy_prefetched(campaign_id))
    per_lead = (
        select(
            r.c.human_open.label("visible"),
            clicked.label("clicked"),
            prefetched.label("prefetched"),
        )
        .where(r.c.campaign_id == campaign_id)
        .subquery()
    )
    s = per_lead.c
    rows = await conn.execute(
        select(s.visible, s.clicked, s.prefetched, func.count()).group_by(
            s.visible, s.clicked, s.prefetched
        )
    )
    return counts_from_groups(sent, ((bool(a), bool(b), bool(c), int(n)) for a, b, c, n in rows))


def _untracked_query(campaign_ids: list[int]) -> Any:
    """Per campaign: its leads' own sent messages that had no pixel / no tracked links
    (a forwarded copy is the friend's, never one of the campaign's recipients)."""
    return (
        select(
            messages.c.campaign_id,
            func.sum(case((messages.c.track_opens.is_(False), 1), else_=0)),
            func.sum(case((messages.c.track_clicks.is_(False), 1), else_=0)),
        )
        .where(
            messages.c.campaign_id.in_(campaign_ids),
            messages.c.sent_at.is_not(None),
            messages.c.forwarded_from_message_id.is_(None),
            or_(messages.c.track_opens.is_(False), messages.c.track_clicks.is_(False)),
        )
        .group_by(messages.c.campaign_id)
    )


async def untracked_counts(conn: AsyncConnection, campaign_ids: list[int]) -> dict[int, Untracked]:
    """`Untracked` for each campaign (absent: everyone was tracked)."""
    if not campaign_ids:
        return {}
    rows = await conn.execute(_untracked_query(campaign_ids))
    return {int(c): Untracked(int(o or 0), int(k or 0)) for c, o, k in rows}


async def sent_count(conn: AsyncConnection, campaign: dict[str, Any]) -> int:
    """Messages of the campaign that left; delivery's counter when it keeps one."""
    if campaign.get("sent_count"):
        return int(campaign["sent_count"])
    result = await conn.execute(
        select(func.count()).where(
            messages.c.campaign_id == campaign["id"],
            messages.c.sent_at.is_not(None),
            messages.c.forwarded_from_message_id.is_(None),
        )
    )
    return int(result.scalar_one())


async def campaign_report(
    conn: AsyncConnection, company_id: int, campaign_id: int
) -> dict[str, Any]:
    """The report for a campaign of this company (crm's NotFound for anyone else's)."""
    campaign = await get_campaign(conn, company_id, campaign_id)
    sent = await sent_count(conn, campaign)
    untracked = (await untracked_counts(conn, [campaign_id])).get(campaign_id, Untracked())
    # The estimate is over the recipients whose opens could be seen at all.
    groups = await estimate_counts(conn, campaign_id, sent - untracked.opens)
    counters = await read_counters(conn, campaign_id)
    report = build_report(campaign_id, sent, counters, groups, untracked)
    sent_at: dt.datetime | None = campaign.get("sent_at")
    report["name"] = campaign.get("name")
    report["sent_at"] = sent_at
    return report


HEADLINE_COUNTERS = ("human_opens_unique", "clicks_unique", "machine_opens")


async def campaign_headlines(
    conn: AsyncConnection, campaigns: list[dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    """The report's headline numbers for many campaigns at once (home and list pages):
    one rollup query for all of them and no open-rate estimate, which costs a simulation
    per campaign. The fields and their arithmetic are `build_report`'s."""
    ids = [int(c["id"]) for c in campaigns]
    n: dict[int, dict[str, int]] = {i: {} for i in ids}
    if ids:
        rows = await conn.execute(
            select(rollup_counts.c.campaign_id, rollup_counts.c.key, rollup_counts.c.n).where(
                rollup_counts.c.campaign_id.in_(ids),
                rollup_counts.c.dim == "n",
                rollup_counts.c.key.in_(HEADLINE_COUNTERS),
            )
        )
        for campaign_id, key, value in rows:
            n[int(campaign_id)][key] = int(value)
    untracked = await untracked_counts(conn, ids)
    out: dict[int, dict[str, Any]] = {}
    for campaign in campaigns:
        counts = n[int(campaign["id"])]
        off = untracked.get(int(campaign["id"]), Untracked())
        # A draft has sent nothing: no count query for it.
        sent = 0 if campaign.get("status") == "draft" else await sent_count(conn, campaign)
        human, clicks = counts.get("human_opens_unique", 0), counts.get("clicks_unique", 0)
        out[int(campaign["id"])] = {
            "sent": sent,
            "human_opens_unique": human,
            "clicks_unique": clicks,
            "machine_opens": counts.get("machine_opens", 0),
            "open_rate": _ratio(human, sent - off.opens),
            "click_rate": _ratio(clicks, sent - off.clicks),
            "not_tracked": off.opens,
        }
    return out
