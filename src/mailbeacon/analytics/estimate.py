"""The estimated true open rate: how many recipients really opened, with a 90% interval.

Pure arithmetic over counts of recipients, so the report (rollups), the naive report
(raw events), the dashboard, the CLI and bench/estimate.py all get it from one function.

What the data can show. Recipients fall in three groups:
- *visible*: a human or proxy open of their own copy was seen (images on, Gmail's proxy);
- *privacy-protected*: no visible open, but Apple's privacy proxy prefetched their pixel,
  which happens whether or not they read the mail;
- *unseen*: neither (images off, plain text, or never opened).
A human click on a message proves it was opened, in every group. The visible readers tell
how often an opener clicks (click propensity p = visible openers who clicked / visible
openers); the clicks in the two hidden groups then reveal how many of them opened
(clickers / p). The assumption, stated wherever the number is shown: the propensity to
click does not depend on the mail client. bench/estimate.py measures what happens when it
does not hold.

The interval is a Bayesian posterior drawn by Monte Carlo with a fixed seed (the same
counts always give the same numbers): p ~ Beta(1 + clickers, 1 + non-clickers) among the
visible openers; each hidden group's open share theta ~ Uniform(0, 1) a priori, so its
click share q = theta * p has, given p, the posterior Beta(1 + c, 1 + n - c) cut at p
(drawn by rejection); then the group's non-clickers who opened anyway are drawn (each
opened with chance theta(1-p)/(1-theta p)), because the truth asked for is this
campaign's share, not a long-run rate. p is learned from the visible readers only: the
hidden groups' clicks carry little information on it and would tie it to the assumption.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

DRAWS = 2000
SEED = 16
LEVEL = 0.90
# Below this many clicks by visible openers the propensity is a guess, and so is the rest.
MIN_VISIBLE_CLICKS = 10
# An interval wider than this (in share of recipients) is reported as not reliable.
MAX_WIDTH = 0.20
REJECT_TRIES = 12
ASSUMPTION = "readers click as often whatever mail app they use"
METHOD = (
    "readers whose opens we can see tell how often an opener clicks; clicks by "
    "privacy-protected and images-off readers then show how many of them opened"
)


@dataclass(frozen=True, slots=True)
class Counts:
    """Recipients of one campaign by what is known of them (each counted once)."""

    sent: int
    visible: int = 0  # a visible (human or proxy, not inferred) open of their own copy
    visible_clicked: int = 0
    prefetched: int = 0  # no visible open; Apple's privacy proxy prefetched their pixel
    prefetched_clicked: int = 0
    unseen: int = 0  # no visible open and no prefetch
    unseen_clicked: int = 0

    @property
    def privacy_protected(self) -> int:
        """Recipients whose only signs are privacy prefetches (a click makes them openers)."""
        return self.prefetched - self.prefetched_clicked

    @property
    def observed(self) -> int:
        """Recipients known to have opened: the report's `human_opens_unique`."""
        return self.visible + self.prefetched_clicked + self.unseen_clicked


def counts_from_groups(sent: int, groups: Iterable[tuple[bool, bool, bool, int]]) -> Counts:
    """Counts from (visible open, clicked, prefetched, number of recipients) groups.

    The groups are per-lead rollup rows (or their naive recomputation); recipients with
    no row did nothing and are unseen. `clicked` is a human click or an inferred open,
    the report's own sign of an images-off opener.
    """
    k = {"visible": 0, "visible_clicked": 0, "prefetched": 0, "prefetched_clicked": 0}
    k |= {"unseen_clicked": 0}
    for visible, clicked, prefetched, n in groups:
        group = "visible" if visible else "prefetched" if prefetched else "unseen"
        if group != "unseen":
            k[group] += n
        if clicked:
            k[f"{group}_clicked"] += n
    unseen = max(sent - k["visible"] - k["prefetched"], k["unseen_clicked"])
    return Counts(sent=sent, unseen=unseen, **k)


@dataclass(frozen=True, slots=True)
class Estimate:
    rate: float
    low: float
    high: float
    reliable: bool
    reason: str
    click_propensity: float | None  # p as the visible openers show it; None without any

    def explanation(self) -> dict[str, Any]:
        """The report's `estimate` object: how it was made and whether to trust it."""
        out = asdict(self)
        del out["rate"], out["low"], out["high"]
        return out | {"assumption": ASSUMPTION, "method": METHOD, "level": LEVEL}


def _quantile(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, max(0, math.floor(q * len(xs))))]


def _hidden_openers(rnd: random.Random, n: int, c: int, p: float) -> float:
    """One posterior draw of how many of a hidden group of n, c of whom clicked, opened."""
    if n == 0:
        return 0.0
    for _ in range(REJECT_TRIES):
        q = rnd.betavariate(1 + c, 1 + n - c)
        if q <= p:
            break
    else:  # the group clicks more than openers do: all of it opened, as far as p can tell
        q = p
    theta = q / p
    rest = n - c
    r = theta * (1 - p) / (1 - theta * p) if theta * p < 1 else 1.0
    mean, var = rest * r, rest * r * (1 - r)
    # Normal approximation of Binomial(rest, r): thousands of draws stay fast in Python.
    extra = min(max(rnd.gauss(mean, math.sqrt(var)) if var > 0 else mean, 0.0), float(rest))
    return c + extra


@functools.lru_cache(maxsize=1024)
def estimate_open_rate(counts: Counts, draws: int = DRAWS, seed: int = SEED) -> Estimate:
    """The estimated share of recipients who truly opened, with its 90% interval.

    Always within [observed open rate, 1]: every draw counts at least the recipients
    known to have opened and at most all of them.
    """
    c = counts
    if c.sent <= 0:
        return Estimate(0.0, 0.0, 0.0, False, "nothing was sent", None)
    observed = c.observed / c.sent
    p_seen = c.visible_clicked / c.visible if c.visible else None
    if c.prefetched == 0 and c.unseen == 0:
        everyone = "every recipient's opens are visible"
        return Estimate(observed, observed, observed, True, everyone, p_seen)
    rnd = random.Random(seed)
    shares = []
    for _ in range(draws):
        p = rnd.betavariate(1 + c.visible_clicked, 1 + c.visible - c.visible_clicked)
        opened = c.visible
        opened += _hidden_openers(rnd, c.prefetched, c.prefetched_clicked, p)
        opened += _hidden_openers(rnd, c.unseen, c.unseen_clicked, p)
        shares.append(min(max(opened / c.sent, observed), 1.0))
    shares.sort()
    tail = (1 - LEVEL) / 2
    low, high = _quantile(shares, tail), _quantile(shares, 1 - tail)
    rate = min(max(_quantile(shares, 0.5), observed), 1.0)
    reliable, reason = True, "enough clicks by readers with visible opens"
    if c.visible_clicked < MIN_VISIBLE_CLICKS:
        reliable = False
        reason = (
            f"only {c.visible_clicked} reader(s) with visible opens clicked (fewer than "
            f"{MIN_VISIBLE_CLICKS}): too few to tell how often an opener clicks"
        )
    elif high - low > MAX_WIDTH:
        reliable = False
        reason = (
            f"the 90% interval spans {(high - low) * 100:.0f} points of open rate: "
            "too few clicks to narrow it"
        )
    return Estimate(rate, low, high, reliable, reason, p_seen)
