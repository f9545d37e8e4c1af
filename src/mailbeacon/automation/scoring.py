"""Applying each company's scoring model to events, in the automation stage's batch.

`score_of` (pure) says what an event is worth: the first open of a message by a person,
each link clicked in it, a forward, an unsubscribe. Machine verdicts score nothing (an
unsubscribe is authorised by its token, so it is the lead's whoever carried it, as for
rules). Each scored thing has a key (``open:<message>``); `score_events` holds one row
per (lead, key), so re-reading a batch, or a second open of the same message, scores
nothing more.

The model's points fade: they halve every half-life. A lead's faded points are kept as
(points, as of when) in `lead_scores`; the whole number of them is inside `leads.score`
next to the rules' points, and `refresh_scores` brings it up to date as time passes.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.automation.sqlutil import add_scores, db_time, insert_rows
from mailbeacon.automation.triggers import Event, trigger_kind
from mailbeacon.crm.scoring import ScoringModel, models_of
from mailbeacon.store.dialect import dialect_insert
from mailbeacon.store.schema_scoring import lead_scores, score_events

DAY = 86400.0
REFRESH = dt.timedelta(hours=1)  # how stale a lead's faded score may get
REFRESH_BATCH = 1000
CHUNK = 500  # (lead, key) pairs per lookup


@dataclass(frozen=True, slots=True)
class Scored:
    lead_id: int
    company_id: int
    key: str
    points: int
    at: dt.datetime
    event_id: int


def fade(points: float, seconds: float, half_life_days: float) -> float:
    """`points` after `seconds`: halved every half-life (0: never). Time never runs back."""
    if half_life_days <= 0 or seconds <= 0:
        return points
    return points * 0.5 ** (seconds / (half_life_days * DAY))


def score_of(ev: Event, model: ScoringModel) -> tuple[str, int] | None:
    """(key, points) the model gives this event, or None when it scores nothing."""
    kind = trigger_kind(ev)  # None for machine verdicts: they never score
    if kind == "opened":
        scored = (f"open:{ev.message_id}", model.open_points)
    elif kind == "clicked":
        link = zlib.crc32((ev.url or "").encode())
        scored = (f"click:{ev.message_id}:{link:08x}", model.click_points)
    elif kind == "forwarded":
        scored = (f"forward:{ev.message_id}", model.forward_points)
    elif kind == "unsubscribed":
        scored = (f"unsubscribe:{ev.message_id}", model.unsubscribe_points)
    else:
        return None
    return scored if scored[1] else None


def add_points(
    points: float, at: dt.datetime, new: Sequence[Scored], half_life_days: float
) -> tuple[float, dt.datetime]:
    """(points, as of) once `new` is added: all of it faded to the latest time."""
    for s in sorted(new, key=lambda s: s.at):
        if s.at >= at:
            points = fade(points, (s.at - at).total_seconds(), half_life_days) + s.points
            at = s.at
        else:  # an older event read late: its points have faded since
            points += fade(s.points, (at - s.at).total_seconds(), half_life_days)
    return points, at


def shown(points: float, at: dt.datetime, when: dt.datetime, half_life_days: float) -> int:
    return round(fade(points, (when - at).total_seconds(), half_life_days))


async def apply_scoring(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], when: dt.datetime
) -> int:
    """Score a batch of events (rows as the consumer reads them) in the caller's
    transaction; returns how many things were newly scored."""
    models = await models_of(conn, {row["company_id"] for row in rows})
    found: dict[tuple[int, str], Scored] = {}
    for row in rows:
        model = models[row["company_id"]]
        if not model.enabled:
            continue
        ev = Event.of(row)
        if (scored := score_of(ev, model)) is not None:
            key = (ev.lead_id, scored[0])
            found.setdefault(key, Scored(ev.lead_id, ev.company_id, *scored, row["at"], ev.id))
    for known in await _already_scored(conn, list(found)):
        found.pop(known, None)
    if not found:
        return 0
    new = list(found.values())
    columns = ("lead_id", "key", "company_id", "event_id", "points", "at")
    await insert_rows(
        conn,
        score_events,
        columns,
        [(s.lead_id, s.key, s.company_id, s.event_id, s.points, db_time(conn, s.at)) for s in new],
    )
    by_lead: dict[int, list[Scored]] = defaultdict(list)
    for s in new:
        by_lead[s.lead_id].append(s)
    await _add_to_leads(conn, by_lead, models, when)
    return len(new)


async def _already_scored(
    conn: AsyncConnection, keys: list[tuple[int, str]]
) -> list[tuple[int, str]]:
    """Those of `keys` scored before (by lead and key in two IN lists, then exactly)."""
    wanted, out = set(keys), []
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        rows = await conn.execute(
            select(score_events.c.lead_id, score_events.c.key).where(
                score_events.c.lead_id.in_({lead for lead, _ in chunk}),
                score_events.c.key.in_({key for _, key in chunk}),
            )
        )
        out += [(r.lead_id, r.key) for r in rows if (r.lead_id, r.key) in wanted]
    return out


async def _add_to_leads(
    conn: AsyncConnection,
    by_lead: Mapping[int, list[Scored]],
    models: Mapping[int, ScoringModel],
    when: dt.datetime,
) -> None:
    """Fold the new points into each lead's faded points and move `leads.score` by
    the change in their whole number."""
    ids = sorted(by_lead)
    current = {
        r.lead_id: r
        for r in await conn.execute(select(lead_scores).where(lead_scores.c.lead_id.in_(ids)))
    }
    upserts, deltas = [], {}
    for lead_id in ids:
        new = by_lead[lead_id]
        company_id = new[0].company_id
        half_life = models[company_id].half_life_days
        row = current.get(lead_id)
        start = (row.points, row.at, row.shown) if row else (0.0, min(s.at for s in new), 0)
        points, at = add_points(start[0], start[1], new, half_life)
        now_shown = shown(points, at, when, half_life)
        upserts.append(
            {"lead_id": lead_id, "company_id": company_id, "points": points, "at": at,
             "shown": now_shown, "refreshed_at": when}
        )  # fmt: skip
        if now_shown != start[2]:
            deltas[(lead_id, company_id)] = now_shown - start[2]
    stmt = dialect_insert(conn, lead_scores)
    stmt = stmt.on_conflict_do_update(
        index_elements=["lead_id"],
        set_={c: stmt.excluded[c] for c in ("points", "at", "shown", "refreshed_at")},
    )
    await conn.execute(stmt, upserts)
    await add_scores(conn, deltas)


async def refresh_scores(conn: AsyncConnection, when: dt.datetime) -> int:
    """Fade the scores not looked at for `REFRESH`, oldest first, a batch at a time;
    returns how many leads were looked at."""
    rows = (
        await conn.execute(
            select(lead_scores)
            .where(lead_scores.c.refreshed_at < when - REFRESH)
            .order_by(lead_scores.c.refreshed_at)
            .limit(REFRESH_BATCH)
        )
    ).all()
    if not rows:
        return 0
    models = await models_of(conn, {r.company_id for r in rows})
    deltas = {}
    for r in rows:
        now_shown = shown(r.points, r.at, when, models[r.company_id].half_life_days)
        if now_shown != r.shown:
            deltas[(r.lead_id, r.company_id)] = now_shown - r.shown
            await conn.execute(
                update(lead_scores)
                .where(lead_scores.c.lead_id == r.lead_id)
                .values(shown=now_shown)
            )
    await conn.execute(
        update(lead_scores)
        .where(lead_scores.c.lead_id.in_([r.lead_id for r in rows]))
        .values(refreshed_at=when)
    )
    await add_scores(conn, deltas)
    return len(rows)
