"""UTM tags for Google Analytics, added to a link without disturbing what it already has."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Every key the API accepts (crm.campaigns.UTM_KEYS), in the order the tags are written.
KEYS = ("source", "medium", "campaign", "term", "content")
# What a campaign that asks for tags but names no source or medium gets.
DEFAULTS = {"source": "mailbeacon", "medium": "email"}


def utm_params(utm: Mapping[str, str]) -> dict[str, str]:
    """The tags a campaign asks for as query params: `utm_source` and `utm_medium` always
    (defaults above), `utm_campaign`, `utm_term` and `utm_content` when set."""
    params = {}
    for key in KEYS:
        value = utm.get(key) or DEFAULTS.get(key)
        if value:
            params[f"utm_{key}"] = str(value)
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
