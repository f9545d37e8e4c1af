"""The time zone a place implies, from the IANA time zone database's own `zone.tab`.

The geo lookup (`enrich.geo`) gives an open a country and sometimes a city; the tz
database that `zoneinfo` already reads lists every zone with its country. A place names
its zone when its city is the zone's city ("Chicago" -> America/Chicago), or when its
country has one zone (FR -> Europe/Paris) or several that keep the same clock today
(ES's mainland and Ceuta). Otherwise (a US reader with no city) it implies none, and the
caller works in UTC hours. No extra dependency: the system's tz data (Debian `tzdata`,
or wherever `zoneinfo.TZPATH` points) is the source.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError


@functools.cache
def country_zones() -> dict[str, tuple[str, ...]]:
    """Country code -> its zones, as zone.tab lists them ({} when no tz data is found)."""
    for folder in TZPATH:
        path = Path(folder) / "zone.tab"
        if path.is_file():
            zones: dict[str, list[str]] = {}
            for line in path.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    parts = line.split("\t")
                    if len(parts) >= 3:
                        zones.setdefault(parts[0].upper(), []).append(parts[2])
            return {cc: tuple(z) for cc, z in zones.items()}
    return {}


def zone(name: str | None) -> ZoneInfo | None:
    """The zone called `name`, or None for no name or one the tz database does not know."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _city(name: str) -> str:
    return name.rsplit("/", 1)[-1].replace("_", " ").casefold()


def _same_clock(names: tuple[str, ...]) -> bool:
    today = dt.datetime.now(dt.UTC)
    return len({today.astimezone(ZoneInfo(n)).utcoffset() for n in names}) == 1


@functools.cache
def place_zone(country: str | None, city: str | None = None) -> str | None:
    """The zone name a place implies, or None when it does not imply one."""
    names = country_zones().get((country or "").upper(), ())
    if not names:
        return None
    if city:
        for name in names:
            if _city(name) == city.casefold():
                return name
    return names[0] if len(names) == 1 or _same_clock(names) else None


def zone_of_places(places: Iterable[tuple[str | None, str | None]]) -> str | None:
    """The zone most of a reader's open places imply (None when none implies one)."""
    found = Counter(z for z in (place_zone(c, t) for c, t in places) if z)
    return found.most_common(1)[0][0] if found else None
