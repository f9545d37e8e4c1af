"""Simulated readers with reading habits: how much sooner best-hour mail is opened.

Each reader lives at a UTC offset and reads mail at checks: most days one check in
their preferred hour (the habit), plus a few at random waking hours. A reader who will
open a mail opens it at the first check after it arrives. Their past opens (eight past
campaigns delivered at random hours) are what the product saw, and only when it could
see them: Apple Mail's privacy prefetch and images-off readers leave no human opens,
so the product falls back to the company's hour for them, exactly as `besthour.choose`
decides (the very function the sender calls, on the same data shape).

Scored both ways on the same readers and the same checks: sending at once versus at
each lead's best hour within the window. Delays are from delivery to first open (how
long mail sits unread, sinking under newer mail) and from the campaign's start (what
waiting for the best hour costs or gains overall).
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from bisect import bisect_left
from dataclasses import dataclass

from mailbeacon.delivery.besthour import choose, usual_hour

START = dt.datetime(2026, 3, 2, 6, 0)  # a campaign started at 06:00 UTC on a Monday
PEAKS = (8, 9, 12, 13, 18, 20, 21)  # local hours people like to read mail
OFFSETS = (-8, -5, -5, 0, 1, 1, 2, 5, 9)  # readers' UTC offsets, hours


@dataclass(frozen=True, slots=True)
class Reader:
    offset: int  # UTC offset, hours
    preferred: int  # the local hour they usually read mail
    habit: float  # chance, each day, of a check in the preferred hour
    extra: float  # mean number of other checks a day, at random waking hours
    visible: bool  # their opens show (not Apple's prefetch, not images off)
    zone_known: bool  # the lead's `timezone` is filled in
    checks: tuple[dt.datetime, ...]  # UTC, sorted, from 10 days before START to 3 after


def _checks(rnd: random.Random, offset: int, preferred: int, habit: float, extra: float) -> tuple:
    out = []
    for day in range(-10, 4):
        midnight = START.replace(hour=0) + dt.timedelta(days=day, hours=-offset)
        if rnd.random() < habit:
            out.append(midnight + dt.timedelta(hours=preferred, minutes=rnd.uniform(0, 60)))
        for _ in range(_poisson(rnd, extra)):
            out.append(midnight + dt.timedelta(hours=rnd.uniform(7, 23)))
    return tuple(sorted(out))


def _poisson(rnd: random.Random, mean: float) -> int:
    n, p, limit = 0, 1.0, 2.718281828459045 ** (-mean)
    while True:
        p *= rnd.random()
        if p < limit:
            return n
        n += 1


def reader(rnd: random.Random, visible_share: float = 0.55, zone_share: float = 0.3) -> Reader:
    offset, preferred = rnd.choice(OFFSETS), rnd.choice(PEAKS)
    habit, extra = rnd.uniform(0.5, 0.95), rnd.uniform(0.3, 2.0)
    return Reader(
        offset,
        preferred,
        habit,
        extra,
        visible=rnd.random() < visible_share,
        zone_known=rnd.random() < zone_share,
        checks=_checks(rnd, offset, preferred, habit, extra),
    )


def first_check(r: Reader, at: dt.datetime) -> dt.datetime | None:
    i = bisect_left(r.checks, at)
    return r.checks[i] if i < len(r.checks) else None


def history(rnd: random.Random, r: Reader, campaigns: int = 8) -> list[dt.datetime]:
    """The human opens the product saw: past campaigns delivered at random hours."""
    if not r.visible:
        return []
    seen = []
    for k in range(campaigns):
        sent = START - dt.timedelta(days=10 - k, hours=-rnd.uniform(0, 24))
        at = first_check(r, sent)
        if at is not None and at < START and rnd.random() < 0.6:  # opened that one
            seen.append(at)
    return seen


@dataclass(frozen=True, slots=True)
class Gain:
    readers: int
    openers: int
    at_once_delay_h: float  # median hours, delivery -> first open, sending at once
    best_hour_delay_h: float  # the same with best-hour sending
    best_hour_from_start_h: float  # median hours, campaign start -> first open, best hour
    own_hour_share: float  # leads sent at their own hour (3+ human opens seen)

    def line(self) -> str:
        gain = self.at_once_delay_h - self.best_hour_delay_h
        return (
            f"{self.readers} readers, {self.openers} openers: median delay delivery -> first "
            f"open {self.at_once_delay_h:.1f} h sent at once, {self.best_hour_delay_h:.1f} h "
            f"at best hour ({gain:.1f} h sooner, ratio "
            f"{self.best_hour_delay_h / max(self.at_once_delay_h, 1e-9):.2f}); from the "
            f"campaign's start {self.best_hour_from_start_h:.1f} h at best hour vs "
            f"{self.at_once_delay_h:.1f} h at once; {self.own_hour_share:.0%} of openers sent "
            "at their own hour, the rest at the company's"
        )


def compare(rnd: random.Random, readers: int = 1000, within_hours: int = 24) -> Gain:
    """Send one campaign to the same readers both ways; medians of the delays."""
    people = [reader(rnd) for _ in range(readers)]
    pasts = [history(rnd, r) for r in people]
    # The company's hour, as `schedule.company_hour` computes it: every human open
    # on its reader's wall clock where the zone is known, else in UTC.
    walls = [
        at + dt.timedelta(hours=r.offset) if r.zone_known else at
        for r, past in zip(people, pasts, strict=True)
        for at in past
    ]
    company = usual_hour(walls, None)
    at_once, best, from_start, own = [], [], [], 0
    for r, past in zip(people, pasts, strict=True):
        if rnd.random() >= 0.5:  # truly opens this campaign (the same draw both ways)
            continue
        tz_shift = dt.timedelta(hours=r.offset) if r.zone_known else dt.timedelta(0)
        # Fixed offsets (no DST) stand in for zones: shift into "local" and back.
        choice = choose(START + tz_shift, within_hours, [a + tz_shift for a in past], None, company)
        sent = choice.at - tz_shift
        own += choice.why == "lead"
        now_open, best_open = first_check(r, START), first_check(r, sent)
        if now_open is None or best_open is None:
            continue
        at_once.append((now_open - START).total_seconds() / 3600)
        best.append((best_open - sent).total_seconds() / 3600)
        from_start.append((best_open - START).total_seconds() / 3600)
    return Gain(
        readers,
        len(at_once),
        statistics.median(at_once),
        statistics.median(best),
        statistics.median(from_start),
        own / max(1, len(at_once)),
    )
