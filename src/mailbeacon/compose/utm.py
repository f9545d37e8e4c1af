"""UTM tags for Google Analytics, added to a link without disturbing what it already has."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MEDIUM = "email"


def utm_params(utm: Mapping[str, str]) -> dict[str, str]:
    """The tags a campaign asks for (`source`, `campaign`, `content`) as query params."""
    params = {"utm_source": utm.get("source") or "mailbeacon", "utm_medium": MEDIUM}
    for key in ("campaign", "content"):
        if utm.get(key):
            params[f"utm_{key}"] = str(utm[key])
    return params


def add_utm(url: str, utm: Mapping[str, str]) -> str:
    """`url` with the campaign's UTM tags appended; a tag the link has already wins.

    The existing query is kept byte for byte (re-encoding it could change what the
    destination site sees); only the missing tags are appended.
    """
    parts = urlsplit(url)
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    missing = {k: v for k, v in utm_params(utm).items() if k not in present}
    if not missing:
        return url
    query = "&".join(q for q in (parts.query, urlencode(missing)) if q)
    return urlunsplit(parts._replace(query=query))
