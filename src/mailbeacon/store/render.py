"""JSON rendering of rows for the API, CLI and pages: timestamps as ISO-8601 UTC with a `Z`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}
