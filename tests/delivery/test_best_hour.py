"""Each lead's best hour, as pure arithmetic: tables of opens, zones and windows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mailbeacon.delivery.besthour import EPOCH, choose, local_hour, send_time, usual_hour
from mailbeacon.delivery.timezones import place_zone, zone_of_places

PARIS, NEW_YORK = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
T = dt.datetime


@pytest.mark.parametrize(
    ("at", "tz", "hour_seconds", "hour"),
    [
        (T(2026, 7, 1, 7, 30), PARIS, 3600, 9),  # summer: UTC+2
        (T(2026, 12, 1, 7, 30), PARIS, 3600, 8),  # winter: UTC+1
        (T(2026, 7, 1, 7, 30), NEW_YORK, 3600, 3),
        (T(2026, 7, 1, 7, 30), None, 3600, 7),  # no zone known: UTC hours
        (T(2026, 7, 1, 23, 59), PARIS, 3600, 1),  # the local day has turned
        (EPOCH + dt.timedelta(seconds=5.5), None, 1, 5),  # one-second "hours"
        (EPOCH + dt.timedelta(seconds=24 * 7 + 23), None, 1, 23),
    ],
)
def test_local_hour(at: T, tz: ZoneInfo | None, hour_seconds: int, hour: int) -> None:
    assert local_hour(at, tz, hour_seconds) == hour


DAY = [T(2026, 11, d, h, m) for d, h, m in ((2, 8, 10), (3, 8, 50), (9, 13, 0), (10, 8, 5))]


@pytest.mark.parametrize(
    ("opens", "tz", "minimum", "hour"),
    [
        (DAY, PARIS, 3, 9),  # three of four at 9 local (08:xx UTC in November)
        (DAY, None, 3, 8),
        (DAY[:2], PARIS, 3, None),  # two opens tell nothing yet
        ([], None, 1, None),
        # A tie goes to the hour opened most recently: habits change.
        ([T(2026, 11, 1, 9), T(2026, 11, 5, 14)], None, 1, 14),
        ([T(2026, 11, 5, 9), T(2026, 11, 1, 14)], None, 1, 9),
    ],
)
def test_usual_hour(opens: list[T], tz: ZoneInfo | None, minimum: int, hour: int | None) -> None:
    assert usual_hour(opens, tz, minimum=minimum) == hour


@pytest.mark.parametrize(
    ("start", "within", "hour", "tz", "expected"),
    [
        # 07:00 local, 9 wanted: two hours later (08:00 UTC in winter Paris).
        (T(2026, 12, 1, 6, 0), 24, 9, PARIS, T(2026, 12, 1, 8, 0)),
        # 09:20 local: already the hour, so at once.
        (T(2026, 12, 1, 8, 20), 24, 9, PARIS, T(2026, 12, 1, 8, 20)),
        # 11:00 local: tomorrow at 9.
        (T(2026, 12, 1, 10, 0), 24, 9, PARIS, T(2026, 12, 2, 8, 0)),
        # 11:00 local, 6-hour window: 9 passed two hours ago, the window ends seven hours
        # past it; sending at once is the closer.
        (T(2026, 12, 1, 10, 0), 6, 9, PARIS, T(2026, 12, 1, 10, 0)),
        # 01:00 local, 6-hour window: its last moment (06:59:59) is closest to 9.
        (T(2026, 12, 1, 0, 0), 6, 9, PARIS, T(2026, 12, 1, 5, 59, 59)),
        # Across the spring-forward night in New York: 9 EDT is 13:00 UTC, not 14:00.
        (T(2026, 3, 8, 0, 0), 48, 9, NEW_YORK, T(2026, 3, 8, 13, 0)),
        (T(2026, 3, 7, 12, 0), 48, 9, NEW_YORK, T(2026, 3, 7, 14, 0)),
        # No zone: UTC hours.
        (T(2026, 12, 1, 6, 0), 24, 9, None, T(2026, 12, 1, 9, 0)),
        # 24-hour window starting just after the hour: the next day's hour is inside it.
        (T(2026, 12, 1, 9, 0, 1), 24, 9, None, T(2026, 12, 1, 9, 0, 1)),
        (T(2026, 12, 1, 10, 0, 1), 24, 9, None, T(2026, 12, 2, 9, 0)),
    ],
)
def test_send_time(start: T, within: int, hour: int, tz: ZoneInfo | None, expected: T) -> None:
    at = send_time(start, within, hour, tz)
    assert at == expected
    assert start <= at < start + dt.timedelta(hours=within)


def test_send_time_with_one_second_hours() -> None:
    start = EPOCH + dt.timedelta(seconds=24 * 1000 + 3.5)  # "03:30"
    assert send_time(start, 24, 7, None, 1) == EPOCH + dt.timedelta(seconds=24 * 1000 + 7)
    assert send_time(start, 24, 2, None, 1) == EPOCH + dt.timedelta(seconds=24 * 1001 + 2)


HABIT = [T(2026, 11, d, 8, 15) for d in (2, 3, 4)]  # 09:15 in Paris, three times


@pytest.mark.parametrize(
    ("opens", "tz", "company", "why", "at"),
    [
        (HABIT, PARIS, 14, "lead", T(2026, 12, 1, 8, 0)),
        (HABIT[:2], PARIS, 14, "company", T(2026, 12, 1, 13, 0)),  # 14 local Paris
        (HABIT[:2], None, 14, "company", T(2026, 12, 1, 14, 0)),
        ([], None, None, "now", T(2026, 12, 1, 6, 0)),
    ],
)
def test_choose(opens: list[T], tz: ZoneInfo | None, company: int | None, why: str, at: T) -> None:
    choice = choose(T(2026, 12, 1, 6, 0), 24, opens, tz, company)
    assert (choice.why, choice.at) == (why, at)


@pytest.mark.parametrize(
    ("country", "city", "zone"),
    [
        ("FR", None, "Europe/Paris"),
        ("fr", "Lyon", "Europe/Paris"),
        ("US", "Chicago", "America/Chicago"),
        ("US", "new york", "America/New_York"),
        ("US", None, None),  # many clocks, no city: no zone
        ("US", "Springfield", None),
        ("ZZ", None, None),
        (None, None, None),
    ],
)
def test_place_zone(country: str | None, city: str | None, zone: str | None) -> None:
    assert place_zone(country, city) == zone


def test_the_zone_most_places_imply() -> None:
    places = [("US", "Chicago"), ("US", None), ("US", "Chicago"), ("FR", None)]
    assert zone_of_places(places) == "America/Chicago"
    assert zone_of_places([("US", None)]) is None
