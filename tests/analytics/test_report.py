"""A campaign with every kind of traffic gives exactly the report CONTRACT.md defines.

The known mix (testkit.sample.KNOWN_MIX), lead by lead:
l1 opens twice (Apple Mail, Paris) and clicks; l2 is only prefetched by Apple's privacy
proxy, then unsubscribes; l3 opens through Gmail's proxy; l4 is scanned (open and click)
then clicks for real, which adds an inferred open; l5 opens, forwards to a friend, and
a second reader opens twice; l6 is a bot; l7 clicks with images blocked (no open at
all); l8 unsubscribes; the friend reads their own copy of l5's mail.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select

from mailbeacon.analytics import rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.store import Database
from mailbeacon.store.schema import cursors
from testkit.naive import naive_report
from testkit.sample import LINKS, add_event, ev, known_mix

EXPECTED: dict[str, Any] = {
    "sent": 8,  # the friend's copy is not a send of the campaign
    "opens_total": 11,  # every open event, any verdict, forwarded or not
    "opens_unique": 7,  # l1 l2 l3 l4 l5 l6 friend: what a naive tool shows
    "human_opens_unique": 5,  # l1, l3 (proxy), l4 (inferred), l5, l7 (click only)
    "machine_opens": 3,  # l2 prefetch, l4 scanner, l6 bot
    "inferred_opens": 2,  # l4 and l7: only a human click says they opened
    "clicks_total": 3,  # l1, l4, l7
    "clicks_unique": 3,
    "bot_clicks": 2,  # l4 scanner, l6 bot
    "forwards": 2,  # l5's forward-to-a-friend send + one other reader of l5's copy
    "unsubscribes": 2,  # l2, l8
    "open_rate": 5 / 8,
    "click_rate": 3 / 8,
    "click_to_open_rate": 3 / 5,
    "by_client": {"Apple Mail": 3, "Thunderbird": 2, "Gmail": 1, "Outlook": 1},
    # Outlook, and the forward's reader twice in Thunderbird; Apple Mail on an iPhone by l1
    # twice and the friend; the Gmail proxy hides its reader's device.
    "by_device": {"desktop": 3, "mobile": 3, "unknown": 1},
    "by_country": {"DE": 2, "FR": 3, "GB": 1, "IN": 1, "unknown": 1},
    "machine_opens_by_verdict": {"bot": 1, "prefetch": 1, "scanner": 1},
    "bot_clicks_by_reason": {"Microsoft Defender link scan": 1, "python-requests": 1},
    "human_opens": 8,
    "forward_sends": 1,
    "forwarded_readers": 1,
    "privacy_protected": 1,  # l2: only Apple's prefetch, no click
}
# Human opens by the lead's local hour: l1 Paris 11h and 12h; l3 (no zone, UTC) 12h;
# l4 Kolkata 18:30; l5 UTC 10h, its forward's reader 15h and 16h; the friend Berlin 18h.
BY_HOUR = {10: 1, 11: 1, 12: 2, 15: 1, 16: 1, 18: 2}


async def _seeded(db: Database) -> tuple[Any, dict[str, Any]]:
    async with db.begin() as conn:
        world = await known_mix(conn)
    await rollups.catch_up(db)
    async with db.connect() as conn:
        return world, await campaign_report(conn, world.company_id, world.campaign_id)


async def test_every_contract_field_of_the_known_mix(db: Database) -> None:
    _, report = await _seeded(db)
    assert {k: report[k] for k in EXPECTED} == EXPECTED
    assert report["by_hour"] == [BY_HOUR.get(h, 0) for h in range(24)]
    assert sum(map(sum, report["heatmap"])) == report["human_opens"]
    assert report["heatmap"][0][11] == 1  # Monday 11h in Paris
    assert report["links"] == [
        {"index": 0, "url": LINKS[0], "clicks": 2},
        {"index": 1, "url": LINKS[1], "clicks": 1},
    ]
    # one visible opener of three clicked: far too few to say how often openers click
    assert report["estimate"]["reliable"] is False
    assert report["estimate"]["reason"].startswith("only 1 reader(s) with visible opens clicked")
    low, high = report["estimated_open_rate_interval"]
    assert report["open_rate"] <= low <= report["estimated_open_rate"] <= high <= 1
    ot = report["over_time"]
    assert sum(ot["human_opens"]) == 8 and sum(ot["clicks"]) == 3
    assert sum(ot["machine_opens"]) == 3 and ot["machine_opens"][0] == 3
    assert ot["clicks"][2] == 1  # l1 clicked 2h10 after the send


async def test_rollups_equal_the_naive_group_by(db: Database) -> None:
    world, report = await _seeded(db)
    async with db.connect() as conn:
        naive = await naive_report(conn, world.company_id, world.campaign_id)
    report.pop("name"), report.pop("sent_at")
    assert report == naive


async def test_replaying_is_idempotent_and_rebuild_gives_the_same(db: Database) -> None:
    world, first = await _seeded(db)
    assert await rollups.catch_up(db) == 0  # nothing is counted twice
    assert await rollups.rebuild(db, limit=3) > 0  # small batches cross lead states
    async with db.connect() as conn:
        again = await campaign_report(conn, world.company_id, world.campaign_id)
        pos = (await conn.execute(select(cursors.c.position))).scalar()
    assert again == first and pos


@pytest.mark.parametrize("batch", [1, 7, 1000])
async def test_random_traffic_in_any_batch_size_matches_naive(db: Database, batch: int) -> None:
    rnd = random.Random(batch)
    async with db.begin() as conn:
        world = await known_mix(conn)
        kinds = [
            ("open", "human", {}),
            ("open", "proxy", {}),
            ("open", "prefetch", {}),
            ("open", "human", {"inferred": True}),
            ("open", "human", {"forwarded": True, "ip": "192.0.2.1"}),
            ("click", "human", {"link_index": 1, "url": LINKS[1]}),
            ("click", "scanner", {}),
            ("unsubscribe", "human", {}),
            ("forward", "human", {}),
        ]
        for _ in range(120):
            type_, verdict, extra = rnd.choice(kinds)
            lead = rnd.choice(list(world.leads))
            await add_event(
                conn, world, lead, **ev(rnd.randrange(0, 5000), type_, verdict, **extra)
            )
    await rollups.catch_up(db, limit=batch)
    async with db.connect() as conn:
        report = await campaign_report(conn, world.company_id, world.campaign_id)
        naive = await naive_report(conn, world.company_id, world.campaign_id)
    report.pop("name"), report.pop("sent_at")
    assert report == naive


async def test_an_older_event_in_a_later_batch_keeps_the_latest_time(db: Database) -> None:
    """The per-lead `last_at` is the latest event's time, whatever order batches come in."""
    import datetime as dt

    from sqlalchemy import insert, select

    from mailbeacon.store import now
    from mailbeacon.store.schema import campaigns, companies, events
    from mailbeacon.store.schema_analytics import rollup_campaign_leads

    t = now()
    async with db.begin() as conn:
        company = (
            await conn.execute(
                insert(companies).values(name="C", plan="trial", created_at=t)
                .returning(companies.c.id)
            )
        ).scalar_one()  # fmt: skip
        campaign = (
            await conn.execute(
                insert(campaigns).values(company_id=company, name="c", subject="s", html="h",
                                         created_at=t).returning(campaigns.c.id)
            )
        ).scalar_one()  # fmt: skip

    async def event(hit: int, at: dt.datetime) -> None:
        async with db.begin() as conn:
            await conn.execute(
                insert(events).values(
                    hit_id=hit, type="open", at=at, company_id=company, message_id=1, lead_id=7,
                    campaign_id=campaign, verdict="human", reason="", inferred=False,
                    forwarded=False,
                )
            )  # fmt: skip
        await rollups.catch_up(db)

    await event(1, t)
    await event(2, t - dt.timedelta(hours=3))  # arrives later, happened earlier
    async with db.connect() as conn:
        last = (await conn.execute(select(rollup_campaign_leads.c.last_at))).scalar_one()
    assert last == t
