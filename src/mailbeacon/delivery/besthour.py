"""When to send one lead their copy: the hour they usually open, within a window.

Pure functions, no I/O. Times are naive UTC (the store's clock format); a lead's time
zone turns them into local hours. An "hour" is `hour_seconds` long: 3600 in production;
tests of durable sending shrink it to a second so a 24-hour window passes in 24 seconds
through the very same arithmetic (a day is always 24 of them).

Why the time zone matters at all: the mode of the UTC hour would pick the same instant
as the mode of the local hour, except across daylight-saving changes. With no known
zone the hours are UTC hours, which is still right outside the DST weeks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

HOUR = 3600
MIN_OPENS = 3  # fewer human opens than this tell nothing about a lead's habit
EPOCH = dt.datetime(1970, 1, 1)

Why = Literal["lead", "company", "now"]


@dataclass(frozen=True)
class Choice:
    """A scheduled time and why: the lead's own hour, the company's, or none known."""

    at: dt.datetime
    hour: int | None
    why: Why


def _offset(at: dt.datetime, tz: ZoneInfo | None) -> float:
    if tz is None:
        return 0.0
    off = at.replace(tzinfo=dt.UTC).astimezone(tz).utcoffset()
    return off.total_seconds() if off else 0.0


def local_hour(at: dt.datetime, tz: ZoneInfo | None, hour_seconds: int = HOUR) -> int:
    """The hour of the (local) day `at` falls in, 0..23."""
    local = (at - EPOCH).total_seconds() + _offset(at, tz)
    return int(local // hour_seconds) % 24


def usual_hour(
    opens: Iterable[dt.datetime], tz: ZoneInfo | None, hour_seconds: int = HOUR, minimum: int = 1
) -> int | None:
    """The most frequent local hour of `opens`; None with fewer than `minimum` opens.
    A tie goes to the hour whose latest open is the most recent (habits change)."""
    hours: Counter[int] = Counter()
    latest: dict[int, dt.datetime] = {}
    for at in opens:
        h = local_hour(at, tz, hour_seconds)
        hours[h] += 1
        latest[h] = max(latest.get(h, at), at)
    if sum(hours.values()) < max(minimum, 1):
        return None
    return max(hours, key=lambda h: (hours[h], latest[h], -h))


def _circular(a: int, b: int) -> int:
    d = abs(a - b) % 24
    return min(d, 24 - d)


def send_time(
    start: dt.datetime,
    within_hours: int,
    hour: int,
    tz: ZoneInfo | None,
    hour_seconds: int = HOUR,
) -> dt.datetime:
    """The first moment at or after `start`, before `start + within_hours`, at which the
    local clock reads `hour` (`start` itself when it already does). When the window never
    reaches that hour, the window edge closer to it (the start on a tie: sooner is better
    than later)."""
    if local_hour(start, tz, hour_seconds) == hour:
        return start
    step = dt.timedelta(seconds=hour_seconds)
    end = start + within_hours * step
    local = (start - EPOCH).total_seconds() + _offset(start, tz)
    slot = int(local // hour_seconds)
    for k in range(slot + 1, slot + 26):  # 25 slots: a DST change can stretch a day
        if k % 24 != hour:
            continue
        wall = EPOCH + dt.timedelta(seconds=k * hour_seconds)  # the local clock, as if UTC
        first = wall - dt.timedelta(seconds=_offset(wall, tz))
        at = wall - dt.timedelta(seconds=_offset(first, tz))  # the offset in force then
        if at < start:
            continue
        if at < end:
            return at
        break
    last = end - dt.timedelta(microseconds=1) if within_hours > 0 else start
    late = _circular(local_hour(start, tz, hour_seconds), hour)
    early = _circular(local_hour(last, tz, hour_seconds), hour)
    return start if late <= early else last.replace(microsecond=0)


def choose(
    start: dt.datetime,
    within_hours: int,
    lead_opens: Iterable[dt.datetime],
    lead_tz: ZoneInfo | None,
    company_hour: int | None,
    hour_seconds: int = HOUR,
) -> Choice:
    """A lead's send time: their usual local hour with >= MIN_OPENS human opens, else the
    company's usual hour (in the lead's zone when known: see `company_hour`), else now."""
    own = usual_hour(lead_opens, lead_tz, hour_seconds, minimum=MIN_OPENS)
    if own is not None:
        return Choice(send_time(start, within_hours, own, lead_tz, hour_seconds), own, "lead")
    if company_hour is not None:
        at = send_time(start, within_hours, company_hour, lead_tz, hour_seconds)
        return Choice(at, company_hour, "company")
    return Choice(start, None, "now")
