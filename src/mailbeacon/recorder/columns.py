"""The one definition of a stored hit: the `hits` columns every writer fills, in order,
and how a `Hit` becomes the row it keeps.

Every writer (the in-process SQLite recorder, the `serve` hits writer process, the
PostgreSQL COPY, anything that ships hits elsewhere) takes its column list and its
formatting from here, so a column added to `Hit` reaches them all at once.

`Hit`'s fields are the columns, in the same order: a hit travels as its fields laid end
to end (`chain.from_iterable(hits)`, the writer socket's frame), and `format_flat`
formats such a list in place, one C-level pass per column that needs it rather than a
Python loop per hit (the SQLite hot path). `stored_rows` and `stored_row` are the same
formatting for callers that want one tuple per hit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from mailbeacon.recorder.batch import Hit
from mailbeacon.store.privacy import anonymize

# The hits table's columns a writer fills (the rest have defaults), in `Hit` order.
HIT_COLUMNS: tuple[str, ...] = Hit._fields
WIDTH = len(HIT_COLUMNS)
AT = HIT_COLUMNS.index("at")
IP = HIT_COLUMNS.index("ip")
USER_AGENT = HIT_COLUMNS.index("user_agent")
ACCEPT_LANGUAGE = HIT_COLUMNS.index("accept_language")

# What a hit keeps of its headers: real user agents are a few hundred characters; a
# longer one is somebody filling the table, and the start is all enrichment reads.
USER_AGENT_CHARS = 1000
LANGUAGE_CHARS = 200  # the column's size

_EPOCH = dt.datetime(1970, 1, 1)

Stamp = Callable[[float], Any]


def utc_datetime(at: float) -> dt.datetime:
    """`Hit.at` (seconds since the epoch) as the naive UTC datetime the column holds."""
    return _EPOCH + dt.timedelta(seconds=at)


def text(value: bytes | None, limit: int | None = None) -> str | None:
    """A header as text for the database: UTF-8 when it is, no NULs, no surrounding
    whitespace (not part of a field value, RFC 9110; httptools leaves the trailing
    part), cut to the column."""
    if value is None:
        return None
    s = value.decode("utf-8", "replace").replace("\x00", "").strip(" \t")
    return s[:limit] if limit else s


def _user_agent(value: bytes | None) -> str | None:
    return text(value, USER_AGENT_CHARS)


def _language(value: bytes | None) -> str | None:
    return text(value, LANGUAGE_CHARS)


def _formats(anonymize_ip: bool, stamp: Stamp) -> list[tuple[int, Callable[[Any], Any]]]:
    """The columns a stored row changes, each with what it does; the others are kept."""
    formats: list[tuple[int, Callable[[Any], Any]]] = [
        (AT, stamp),
        (USER_AGENT, _user_agent),
        (ACCEPT_LANGUAGE, _language),
    ]
    if anonymize_ip:
        formats.append((IP, anonymize))
    return formats


def format_flat(fields: list[Any], anonymize_ip: bool, stamp: Stamp = utc_datetime) -> list[Any]:
    """Hits' fields laid end to end (`WIDTH` per hit, in `HIT_COLUMNS` order) turned, in
    place, into their stored values; returns `fields`. `stamp` formats `at` (SQLite's
    writer stores text, PostgreSQL a datetime)."""
    for column, format_ in _formats(anonymize_ip, stamp):
        fields[column::WIDTH] = map(format_, fields[column::WIDTH])
    return fields


def stored_rows(
    hits: Iterable[Hit], anonymize_ip: bool, stamp: Stamp = utc_datetime
) -> list[tuple[Any, ...]]:
    """Each hit as the row the hits table keeps, in `HIT_COLUMNS` order."""
    flat = format_flat(list(chain.from_iterable(hits)), anonymize_ip, stamp)
    return list(zip(*[iter(flat)] * WIDTH, strict=True))


def stored_row(hit: Hit, anonymize_ip: bool, stamp: Stamp = utc_datetime) -> tuple[Any, ...]:
    """One hit as the row the hits table keeps, in `HIT_COLUMNS` order: `at` through
    `stamp`, the address cut to its network when `anonymize_ip`, headers as text cut to
    their columns."""
    return stored_rows((hit,), anonymize_ip, stamp)[0]
