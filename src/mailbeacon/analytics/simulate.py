"""Simulated campaigns with a known truth, to measure the estimated true open rate.

A campaign is a mix of readers (Apple Mail with privacy protection, images off, Gmail's
proxy, everyone else with images on), some behind a security scanner, each of whom
truly opens with one chance and, having opened, clicks with another. Each reader leaves
the events enrich would leave for them: Apple's prefetch on delivery whatever the reader
does; a human or proxy open only when images load; a click, and with it the inferred
open enrich adds when no open was seen; a scanner's open and clicks before delivery.
The truth (who opened) is kept beside the events, so a report can be scored against it.

Two ways to score, both through the report's own code:
- `pure_estimate`: each lead's events through `rules.advance` (the rollups' per-lead
  arithmetic), grouped as `report.estimate_counts` groups the per-lead rollup, then
  `estimate.counts_from_groups` and `estimate_open_rate`, the very functions
  `build_report` calls. Fast: hundreds of campaigns in seconds.
- `db_report`: the events inserted into a real database, rolled up by the pipeline's
  `rollups.catch_up`, and read back by `report.campaign_report`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from mailbeacon.analytics.estimate import Counts, Estimate, counts_from_groups, estimate_open_rate
from mailbeacon.analytics.rules import Fact, LeadState, advance
from mailbeacon.store import now
from mailbeacon.store.schema import campaigns, events, leads, messages

SENT_AT = dt.datetime(2024, 3, 4, 9, 0, 0)
URL = "https://example.com/pricing"


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of a campaign's recipients, and how they behave."""

    apple: float  # Apple Mail with privacy protection: prefetched on delivery
    images_off: float  # no pixel ever loads: only a click shows an open
    gmail: float  # Gmail's image proxy: fetches when the reader opens
    scanned: float  # behind a security scanner that fetches and clicks before delivery
    open_share: float  # chance a recipient truly opens
    click_share: float  # chance an opener clicks
    apple_click_factor: float = 1.0  # >1 breaks the assumption: Apple readers click more


def random_mix(rnd: random.Random, apple_click_factor: float = 1.0) -> Mix:
    return Mix(
        apple=rnd.uniform(0.15, 0.6),
        images_off=rnd.uniform(0.03, 0.2),
        gmail=rnd.uniform(0.05, 0.25),
        scanned=rnd.uniform(0.0, 0.15),
        open_share=rnd.uniform(0.1, 0.6),
        click_share=rnd.uniform(0.08, 0.3),
        apple_click_factor=apple_click_factor,
    )


@dataclass(frozen=True, slots=True)
class Campaign:
    sent: int
    opened: int  # the truth
    lead_events: list[list[dict[str, Any]]]  # one list per recipient, in time order

    @property
    def true_rate(self) -> float:
        return self.opened / self.sent

    @property
    def naive_rate(self) -> float:
        """What a tool without verdicts shows: any open event, prefetches and scanners too."""
        return sum(any(e["type"] == "open" for e in evs) for evs in self.lead_events) / self.sent


def _ev(minutes: int, type_: str, verdict: str, inferred: bool = False) -> dict[str, Any]:
    return {
        "at": SENT_AT + dt.timedelta(minutes=minutes),
        "type": type_,
        "verdict": verdict,
        "inferred": inferred,
    }


def _reader(rnd: random.Random, mix: Mix) -> tuple[bool, list[dict[str, Any]]]:
    """One recipient: whether they opened, and the events they leave."""
    u = rnd.random()
    kind = "apple" if u < mix.apple else "off" if u < mix.apple + mix.images_off else None
    if kind is None:
        kind = (
            "gmail"
            if rnd.random() < mix.gmail / max(1e-9, 1 - mix.apple - mix.images_off)
            else "on"
        )
    out = []
    if rnd.random() < mix.scanned:
        out += [_ev(0, "open", "scanner"), _ev(0, "click", "scanner")]
    if kind == "apple":
        out.append(_ev(1, "open", "prefetch"))
    opened = rnd.random() < mix.open_share
    if not opened:
        return False, out
    seen = kind in ("gmail", "on")
    if seen:
        out.append(_ev(30, "open", "proxy" if kind == "gmail" else "human"))
    factor = mix.apple_click_factor if kind == "apple" else 1.0
    if rnd.random() < min(1.0, mix.click_share * factor):
        if not seen:  # enrich adds an inferred open to a click with no open seen
            out.append(_ev(40, "open", "human", inferred=True))
        out.append(_ev(40, "click", "human"))
    return True, out


def simulate(rnd: random.Random, mix: Mix, sent: int) -> Campaign:
    opened, lead_events = 0, []
    for _ in range(sent):
        o, evs = _reader(rnd, mix)
        opened += o
        lead_events.append(evs)
    return Campaign(sent=sent, opened=opened, lead_events=lead_events)


def pure_counts(campaign: Campaign) -> Counts:
    """The recipient groups as `report.estimate_counts` reads them from the rollup."""
    groups = []
    for lead, evs in enumerate(campaign.lead_events):
        state = LeadState()
        for i, e in enumerate(evs):
            fact = Fact(id=i, campaign_id=1, lead_id=lead, message_id=lead, **e)
            state = advance(state, fact)
        if state == LeadState():
            continue  # no rollup row: an unseen recipient who did nothing
        clicked = state.human_click or state.inferred_open
        prefetched = not state.human_open and any(
            e["type"] == "open" and e["verdict"] == "prefetch" for e in evs
        )
        groups.append((state.human_open, clicked, prefetched, 1))
    return counts_from_groups(campaign.sent, groups)


def pure_estimate(campaign: Campaign) -> tuple[Counts, Estimate]:
    counts = pure_counts(campaign)
    return counts, estimate_open_rate(counts)


async def insert_campaign(conn: Any, company_id: int, campaign: Campaign, name: str) -> int:
    """The campaign, one lead and message per recipient, and their events, in the database."""
    result = await conn.execute(
        insert(campaigns)
        .values(
            company_id=company_id,
            name=name,
            subject=name,
            html="<p>Hello</p>",
            status="sent",
            sent_count=0,
            created_at=SENT_AT,
            sent_at=SENT_AT,
        )
        .returning(campaigns.c.id)
    )
    campaign_id = int(result.scalar_one())
    created = now()
    lead_rows = [
        {
            "company_id": company_id,
            "email": f"r{i}.c{campaign_id}@sim.example",
            "score": 0,
            "status": "subscribed",
            "created_at": created,
        }
        for i in range(campaign.sent)
    ]
    result = await conn.execute(
        insert(leads).returning(leads.c.id, sort_by_parameter_order=True), lead_rows
    )
    lead_ids = [int(r[0]) for r in result]
    message_rows = [
        {
            "company_id": company_id,
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "subject": name,
            "html": "<p>Hello</p>",
            "status": "sent",
            "created_at": SENT_AT,
            "sent_at": SENT_AT,
        }
        for lead_id in lead_ids
    ]
    result = await conn.execute(
        insert(messages).returning(messages.c.id, sort_by_parameter_order=True), message_rows
    )
    message_ids = [int(r[0]) for r in result]
    rows = []
    for lead_id, message_id, evs in zip(lead_ids, message_ids, campaign.lead_events, strict=True):
        for e in evs:
            click = e["type"] == "click"
            rows.append(
                e
                | {
                    "company_id": company_id,
                    "campaign_id": campaign_id,
                    "lead_id": lead_id,
                    "message_id": message_id,
                    "forwarded": False,
                    "reason": "",
                    "url": URL if click else None,
                    "link_index": 0 if click else None,
                }
            )
    if rows:
        await conn.execute(insert(events), rows)
    return campaign_id
