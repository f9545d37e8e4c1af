"""Finding leads: search, filters, sort and keyset pages (`GET /api/v1/leads`).

Pages are keyset pages: the cursor carries the last row's sort value and id, and the
next page starts strictly after it, so page 1,000 costs what page 1 costs and a lead
added meanwhile neither repeats nor skips a row (OFFSET does both).

Engagement is the lead's own, over all their mail (events of their messages, not of
readers they forwarded it to), decided as the campaign report decides it:
- `opened`: a human or proxy open, or an open inferred from a human click;
- `clicked`: a human click;
- `privacy_protected`: not opened, but a privacy prefetch (Apple Mail) fetched the pixel;
- `never_opened`: mail was sent to them, and neither of the above;
- `unsubscribed`, `bounced`: the lead's status (a hard bounce sets `bounced`; a
  temporary failure of one message does not).
The score and engagement are tracking data: callers who may not see it cannot filter
or sort by it (`tracking=False`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.errors import Forbidden, Invalid
from mailbeacon.crm.leads import LEAD_FIELDS, visible_leads
from mailbeacon.crm.lists import get_list
from mailbeacon.crm.users import Principal
from mailbeacon.store.schema import events, leads, list_members, messages

SORTS = {"email": leads.c.email, "created_at": leads.c.created_at, "score": leads.c.score}
ENGAGEMENTS = (
    "opened",
    "clicked",
    "never_opened",
    "privacy_protected",
    "unsubscribed",
    "bounced",
)
MAX_LIMIT = 500
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True, slots=True)
class LeadQuery:
    q: str | None = None  # email or name contains, any case
    email: str | None = None  # exactly this address, any case
    list_id: int | None = None
    engagement: str | None = None
    min_score: int | None = None
    sort: str = DEFAULT_SORT  # email|created_at|score, "-" first for descending
    limit: int = 50
    cursor: str | None = None


def _own_events(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """EXISTS an event of the lead's own (index on events.lead_id) matching conditions."""
    return exists(
        select(events.c.id).where(
            events.c.lead_id == leads.c.id, events.c.forwarded.is_(False), *conditions
        )
    )


def opened() -> ColumnElement[bool]:
    return _own_events(
        events.c.type == "open",
        or_(events.c.verdict.in_(("human", "proxy")), events.c.inferred.is_(True)),
    )


def clicked() -> ColumnElement[bool]:
    return _own_events(events.c.type == "click", events.c.verdict == "human")


def prefetched() -> ColumnElement[bool]:
    return _own_events(events.c.type == "open", events.c.verdict == "prefetch")


def received() -> ColumnElement[bool]:
    return exists(
        select(messages.c.id).where(messages.c.lead_id == leads.c.id, messages.c.status == "sent")
    )


def engagement_filter(name: str) -> ColumnElement[bool]:
    if name == "opened":
        return opened()
    if name == "clicked":
        return clicked()
    if name == "privacy_protected":
        return and_(~opened(), prefetched())
    if name == "never_opened":
        return and_(received(), ~opened(), ~prefetched())
    if name in ("unsubscribed", "bounced"):
        return leads.c.status == name
    raise Invalid(f"engagement must be one of {', '.join(ENGAGEMENTS)}", field="engagement")


def _sort(sort: str) -> tuple[str, bool]:
    name, descending = sort.removeprefix("-"), sort.startswith("-")
    if name not in SORTS:
        raise Invalid(f"sort must be one of {', '.join(SORTS)}, '-' first to reverse", field="sort")
    return name, descending


def encode_cursor(sort: str, row: dict[str, Any]) -> str:
    name, _ = _sort(sort)
    value = row[name]
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, row["id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(sort: str, cursor: str) -> tuple[Any, int]:
    """The (sort value, id) a cursor carries; 422 for one that is not ours or that was
    made for another sort (its position would mean nothing)."""
    name = sort.removeprefix("-")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, value, last_id = json.loads(raw)
        wanted = {"created_at": str, "score": int, "email": str}[name]
        if made_for != sort or not isinstance(last_id, int) or not isinstance(value, wanted):
            raise ValueError
        if name == "created_at":
            value = dt.datetime.fromisoformat(value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "cursor is not valid for this sort; start again without it", field="cursor"
        ) from None
    return value, last_id


def _check_tracking(query: LeadQuery) -> None:
    """The sales roles see no tracking data, so they cannot search by it either."""
    asked = [
        name
        for name, used in (
            ("engagement", query.engagement is not None),
            ("min_score", query.min_score is not None),
            ("sort", query.sort.removeprefix("-") == "score"),
        )
        if used
    ]
    if asked:
        raise Forbidden(
            f"{asked[0]}: engagement and score are tracking data, which your role does not see",
            field=asked[0],
        )


async def search_leads(
    conn: AsyncConnection, who: Principal, query: LeadQuery, *, tracking: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the leads the caller may see, and the cursor of the next (None: last)."""
    if not tracking:
        _check_tracking(query)
    name, descending = _sort(query.sort)
    if not 1 <= query.limit <= MAX_LIMIT:
        raise Invalid(f"limit must be 1 to {MAX_LIMIT}", field="limit")
    stmt = visible_leads(who, select(*LEAD_FIELDS))
    if query.q:
        needle = query.q.strip().lower()
        full_name = func.lower(
            func.coalesce(leads.c.first_name, "") + " " + func.coalesce(leads.c.last_name, "")
        )
        stmt = stmt.where(
            or_(
                leads.c.email.contains(needle, autoescape=True),
                full_name.contains(needle, autoescape=True),
            )
        )
    if query.email is not None:
        stmt = stmt.where(leads.c.email == query.email.strip().lower())
    if query.list_id is not None:
        await get_list(conn, who.company_id, query.list_id)
        stmt = stmt.where(
            exists(
                select(list_members.c.lead_id).where(
                    list_members.c.list_id == query.list_id,
                    list_members.c.lead_id == leads.c.id,
                )
            )
        )
    if query.engagement is not None:
        stmt = stmt.where(engagement_filter(query.engagement))
    if query.min_score is not None:
        stmt = stmt.where(leads.c.score >= query.min_score)
    column = SORTS[name]
    if query.cursor:
        value, last_id = decode_cursor(query.sort, query.cursor)
        after = column < value if descending else column > value
        beyond = leads.c.id < last_id if descending else leads.c.id > last_id
        stmt = stmt.where(or_(after, and_(column == value, beyond)))
    order = (column.desc(), leads.c.id.desc()) if descending else (column, leads.c.id)
    result = await conn.execute(stmt.order_by(*order).limit(query.limit + 1))
    rows = [dict(r) for r in result.mappings()]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    if tracking:
        labels = await engagement_labels(conn, [r["id"] for r in rows])
        for row in rows:
            row["engagement"] = _label(row, labels.get(row["id"], set()))
    else:
        for row in rows:
            row.pop("score", None)
    return rows, encode_cursor(query.sort, rows[-1]) if more else None


async def engagement_labels(conn: AsyncConnection, lead_ids: list[int]) -> dict[int, set[str]]:
    """What each lead's own events show (opened, clicked, prefetched) and whether they
    were sent mail (received): one grouped read per page of leads."""
    if not lead_ids:
        return {}
    out: dict[int, set[str]] = {}
    own = select(events.c.lead_id, events.c.type, events.c.verdict, events.c.inferred).where(
        events.c.lead_id.in_(lead_ids), events.c.forwarded.is_(False)
    )
    for row in await conn.execute(own.distinct()):
        signs = out.setdefault(row.lead_id, set())
        if row.type == "open" and (row.verdict in ("human", "proxy") or row.inferred):
            signs.add("opened")
        elif row.type == "open" and row.verdict == "prefetch":
            signs.add("prefetched")
        elif row.type == "click" and row.verdict == "human":
            signs.add("clicked")
    sent = select(messages.c.lead_id).where(
        messages.c.lead_id.in_(lead_ids), messages.c.status == "sent"
    )
    for lead_id in (await conn.execute(sent.distinct())).scalars():
        out.setdefault(lead_id, set()).add("received")
    return out


def _label(row: dict[str, Any], signs: set[str]) -> str | None:
    """The lead's engagement in one word, the strongest sign first (None: never mailed)."""
    if row["status"] in ("unsubscribed", "bounced"):
        return str(row["status"])
    for sign, label in (
        ("clicked", "clicked"),
        ("opened", "opened"),
        ("prefetched", "privacy_protected"),
        ("received", "never_opened"),
    ):
        if sign in signs:
            return label
    return None
