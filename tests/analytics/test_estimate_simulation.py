"""The estimate against a known truth (a fast cut of bench/estimate.py).

Simulated campaigns (analytics/simulate.py) go through the report's pure path: every
lead's events through the rollups' `rules.advance`, grouped as the report groups its
per-lead rollup, then the report's `estimate_open_rate`. Three of them also go through a
real database, the pipeline's rollups and `campaign_report`, which must give exactly the
same numbers.
"""

from __future__ import annotations

import random

from mailbeacon.analytics import rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.analytics.simulate import (
    Mix,
    insert_campaign,
    pure_estimate,
    random_mix,
    simulate,
)
from mailbeacon.crm.companies import create_company
from mailbeacon.store import Database


def test_the_interval_holds_the_truth_and_beats_the_naive_rate() -> None:
    rnd = random.Random(7)
    covered, err, naive_err, human_err, k = 0, 0.0, 0.0, 0.0, 60
    for _ in range(k):
        c = simulate(rnd, random_mix(rnd), rnd.randint(300, 1500))
        counts, est = pure_estimate(c)
        covered += est.low <= c.true_rate <= est.high
        err += abs(est.rate - c.true_rate)
        naive_err += abs(c.naive_rate - c.true_rate)
        human_err += abs(counts.observed / c.sent - c.true_rate)
    assert covered / k >= 0.8
    assert err < naive_err and err < human_err
    assert err / k < 0.06


def test_when_apple_readers_click_more_the_estimate_overshoots() -> None:
    """The assumption broken on purpose: its limit is measured, and it shows."""
    rnd = random.Random(8)
    over = 0
    for _ in range(20):
        c = simulate(rnd, random_mix(rnd, apple_click_factor=2.0), 1000)
        _, est = pure_estimate(c)
        over += est.rate > c.true_rate
    assert over >= 18


async def test_through_the_database_the_report_gives_the_pure_numbers(db: Database) -> None:
    rnd = random.Random(9)
    mix = Mix(
        apple=0.4,
        images_off=0.1,
        gmail=0.2,
        scanned=0.1,
        open_share=0.35,
        click_share=0.2,
    )
    sims = [simulate(rnd, mix, 400) for _ in range(3)]
    async with db.begin() as conn:
        company = await create_company(conn, "Simulated", "essential")
        ids = [await insert_campaign(conn, company, c, f"sim {i}") for i, c in enumerate(sims)]
    await rollups.catch_up(db)
    async with db.connect() as conn:
        for c, cid in zip(sims, ids, strict=True):
            r = await campaign_report(conn, company, cid)
            counts, est = pure_estimate(c)
            assert r["sent"] == c.sent == 400
            assert r["privacy_protected"] == counts.privacy_protected > 0
            assert r["human_opens_unique"] == counts.observed
            assert r["estimated_open_rate"] == est.rate
            assert r["estimated_open_rate_interval"] == [est.low, est.high]
            assert r["estimate"]["reliable"] is est.reliable
