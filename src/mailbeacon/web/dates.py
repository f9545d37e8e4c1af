"""Dates for people: `<time datetime="…Z">` in UTC, to the second, plus "3 minutes ago".

The page renders UTC (the server does not know the reader's zone); static/time.js then
rewrites each `<time data-local>` to the browser's local time. The relative words are
computed here, so they read well without JavaScript too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from markupsafe import Markup, escape

# (seconds in the unit, its name): the largest unit that fits is the one spoken.
_UNITS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (7 * 86400, "week"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
)


def _as_utc(value: datetime | str) -> datetime:
    """ISO 8601 (the store, the API) or RFC 5322 (a mail's Date header), as aware UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            value = parsedate_to_datetime(value)  # ValueError when it is neither
    # Naive datetimes from the store are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ago(value: datetime | str, now: datetime | None = None) -> str:
    """'just now', '3 minutes ago', '2 days ago', 'in 5 hours'."""
    at = _as_utc(value)
    seconds = int(((now or datetime.now(UTC)) - at).total_seconds())
    span = abs(seconds)
    if span < 60:
        return "just now"
    for size, unit in _UNITS:
        if span >= size:
            n = span // size
            words = f"{n} {unit}{'' if n == 1 else 's'}"
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return "just now"  # unreachable: span >= 60 matches "minute"


def when(
    value: datetime | str | None, relative: bool = True, now: datetime | None = None
) -> Markup:
    """A `<time>` element: the instant to the second, with '(3 minutes ago)' if asked."""
    if value is None or value == "":
        return Markup("")
    try:
        at = _as_utc(value).replace(microsecond=0)
    except (ValueError, TypeError):
        return Markup(escape(str(value)))  # not a date we can read: shown as it came
    iso = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = at.strftime("%Y-%m-%d %H:%M UTC")
    html = f'<time datetime="{iso}" data-local title="{iso}">{escape(text)}</time>'
    if relative:
        html += f' <span class="ago">({escape(ago(at, now))})</span>'
    return Markup(html)
