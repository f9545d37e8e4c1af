"""The estimated true open rate against a known truth: coverage and errors.

    .venv/bin/python bench/estimate.py [--campaigns 400] [--db-campaigns 30] [--seed 16]

Hundreds of simulated campaigns (mailbeacon.analytics.simulate: random shares of Apple
Mail readers with privacy protection, images-off readers, Gmail's proxy, security
scanners, true openers and clickers; 300 to 3,000 recipients each) are scored through
the pure path: each lead's events through the rollups' `rules.advance`, grouped as the
report groups its per-lead rollup, then the report's own `counts_from_groups` and
`estimate_open_rate`. The first `--db-campaigns` of them also go the whole way: events
inserted into a real SQLite database, rolled up by the pipeline's `rollups.catch_up`,
read back by `campaign_report`; the run checks the two paths give the same numbers.

Printed, in the same run: the 90% interval's coverage (share of campaigns whose interval
holds the true open share; goal >= 88%), the mean absolute error of the estimate, of the
naive rate (every open counted, prefetches and scanners too) and of the observed human
rate (`open_rate`); then the same where the assumption breaks (Apple readers click 2x).

Then send times (mailbeacon.delivery.send_time_sim: readers with preferred hours, past
opens seen only for visible readers, the sender's own `besthour.choose`): the median
delay from delivery to first open sending at once versus at each lead's best hour
within 24 hours, over `--readers` readers and three seeds, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from report import load_average, machine  # bench/report.py, beside this file

from mailbeacon.analytics import rollups
from mailbeacon.analytics.report import campaign_report
from mailbeacon.analytics.simulate import (
    Campaign,
    insert_campaign,
    pure_estimate,
    random_mix,
    simulate,
)
from mailbeacon.crm.companies import create_company
from mailbeacon.delivery.send_time_sim import compare
from mailbeacon.store import Database
from mailbeacon.store.migrate import upgrade


@dataclass
class Score:
    covered: int = 0
    reliable: int = 0
    reliable_covered: int = 0
    err: float = 0.0
    naive_err: float = 0.0
    human_err: float = 0.0
    width: float = 0.0
    n: int = 0

    def add(
        self, c: Campaign, rate: float, low: float, high: float, reliable: bool, human: float
    ) -> None:
        truth = c.true_rate
        inside = low - 1e-12 <= truth <= high + 1e-12
        self.n += 1
        self.covered += inside
        self.reliable += reliable
        self.reliable_covered += inside and reliable
        self.err += abs(rate - truth)
        self.naive_err += abs(c.naive_rate - truth)
        self.human_err += abs(human - truth)
        self.width += high - low

    def line(self, name: str) -> str:
        n = self.n
        rel = f"{self.reliable_covered / self.reliable:.1%}" if self.reliable else "-"
        return (
            f"{name:<34} campaigns {n:>4}  coverage {self.covered / n:6.1%}  "
            f"MAE estimate {self.err / n:.4f}  naive {self.naive_err / n:.4f}  "
            f"observed human {self.human_err / n:.4f}  mean width {self.width / n:.3f}  "
            f"reliable {self.reliable}/{n} (coverage {rel})"
        )


def campaigns(seed: int, k: int, factor: float) -> list[Campaign]:
    rnd = random.Random(seed)
    return [simulate(rnd, random_mix(rnd, factor), rnd.randint(300, 3000)) for _ in range(k)]


def pure_score(cs: list[Campaign]) -> Score:
    score = Score()
    for c in cs:
        counts, est = pure_estimate(c)
        score.add(c, est.rate, est.low, est.high, est.reliable, counts.observed / c.sent)
    return score


async def db_score(cs: list[Campaign]) -> tuple[Score, int]:
    """Through SQLite, the pipeline's rollups and `campaign_report`; and how many of the
    reports gave exactly the pure path's numbers."""
    score, same = Score(), 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'estimate.db'}")
        try:
            await upgrade(db)
            async with db.begin() as conn:
                company = await create_company(conn, "Simulated", "essential")
                ids = [
                    await insert_campaign(conn, company, c, f"sim {i}") for i, c in enumerate(cs)
                ]
            await rollups.catch_up(db, limit=20_000)
            async with db.connect() as conn:
                for c, cid in zip(cs, ids, strict=True):
                    r = await campaign_report(conn, company, cid)
                    low, high = r["estimated_open_rate_interval"]
                    score.add(
                        c,
                        r["estimated_open_rate"],
                        low,
                        high,
                        r["estimate"]["reliable"],
                        r["open_rate"],
                    )
                    _, est = pure_estimate(c)
                    same += (r["estimated_open_rate"], low, high) == (est.rate, est.low, est.high)
        finally:
            await db.dispose()
    return score, same


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--campaigns", type=int, default=400)
    ap.add_argument("--db-campaigns", type=int, default=30)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--readers", type=int, default=2000)
    args = ap.parse_args()
    print(f"machine: {machine()}; load average at start {load_average()}", flush=True)
    t = time.perf_counter()
    holds = campaigns(args.seed, args.campaigns, 1.0)
    print(pure_score(holds).line("assumption holds (pure path)"), flush=True)
    if args.db_campaigns:
        score, same = await db_score(holds[: args.db_campaigns])
        print(score.line("assumption holds (SQLite + report)"), flush=True)
        print(f"{'':<34} same numbers as the pure path: {same}/{score.n}", flush=True)
    broken = campaigns(args.seed + 1, args.campaigns, 2.0)
    print(pure_score(broken).line("Apple readers click 2x (pure path)"), flush=True)
    for seed in range(args.seed, args.seed + 3):
        print(f"best hour, seed {seed}: {compare(random.Random(seed), args.readers).line()}")
    print(
        f"elapsed {time.perf_counter() - t:.1f}s; load average at end {load_average()}",
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
