"""Monthly time partitions of `hits` and `events` on PostgreSQL (migration 0015).

Both tables are RANGE-partitioned by `at`, one partition a month (`hits_p2026_12`) and
a DEFAULT partition (`hits_default`) that takes any row no month covers: a test's hit
from 1999, a clock gone wrong. No insert ever fails for its timestamp.

`ensure_partitions` keeps the current month and `months_ahead` more ready; the migration
and every retention pass call it. A month is added as a plain table and then ATTACHed,
which holds only a SHARE UPDATE EXCLUSIVE lock on the parent (the edge's COPY and every
reader go on); rows of that month already sitting in the DEFAULT partition (the stage
was down when the month began) are moved into it first.

`drop_expired` is retention by the partition: when every company deletes raw hits after
some days, a month older than the longest of them holds only hits the row DELETE would
delete anyway, so it is DETACHed and DROPped instead, in milliseconds and without a
dead row to vacuum. It never drops a month that holds a hit the enrich stage has not
judged yet, or the table's highest id (store.tombstones: a freed top id would be handed
out again behind the enrich cursor). Events are never dropped: retention keeps events
(store.retention). SQLite has no partitions; everything here is a no-op there.

Synchronous, on a SQLAlchemy `Connection`: Alembic calls it as is, the async stages
through `AsyncConnection.run_sync` (or `maintain`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from mailbeacon.store.db import Database, now

log = logging.getLogger("mailbeacon.partitions")

TABLES = ("hits", "events")
MONTHS_AHEAD = 3
# Partition DDL waits at most this long for its lock, then gives up until the next pass:
# a DETACH (ACCESS EXCLUSIVE on `hits`) queued behind a long report would otherwise hold
# up every insert queued behind it, the edge's included. Retention is never urgent.
LOCK_TIMEOUT = "500ms"
# pg_advisory_xact_lock key: two processes adding the same month would collide.
_LOCK_KEY = 0x6D625F70617274  # "mb_part"
ENRICH_CURSOR = "enrich"  # enrich.pipeline.STAGE (store may not import enrich)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition of `table`; `lower`/`upper` are None for the DEFAULT partition."""

    table: str
    name: str
    lower: dt.datetime | None
    upper: dt.datetime | None

    @property
    def is_default(self) -> bool:
        return self.lower is None


def month_start(at: dt.datetime) -> dt.datetime:
    return dt.datetime(at.year, at.month, 1)


def add_months(month: dt.datetime, n: int) -> dt.datetime:
    index = month.year * 12 + month.month - 1 + n
    return dt.datetime(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: dt.datetime) -> str:
    return f"{table}_p{month:%Y_%m}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(conn: Connection, table: str) -> bool:
    """True on PostgreSQL once migration 0015 has run."""
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.scalar(
        text("SELECT CAST(c.relkind AS text) FROM pg_class c"
             " JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE c.relname = :t AND n.nspname = current_schema()"),
        {"t": table},
    )  # fmt: skip
    return kind == "p"


def partitions(conn: Connection, table: str) -> list[Partition]:
    """The partitions of `table`, oldest first, the DEFAULT partition last."""
    rows = conn.execute(
        text("SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
             " JOIN pg_class c ON c.oid = i.inhrelid"
             " WHERE i.inhparent = CAST(:t AS regclass)"),
        {"t": table},
    ).all()  # fmt: skip
    out = []
    for name, bound in rows:
        if bound == "DEFAULT":
            out.append(Partition(table, name, None, None))
            continue
        m = _BOUND.search(bound)
        if m is None:  # not a range we made (e.g. MINVALUE): leave it alone
            continue
        lower, upper = (dt.datetime.fromisoformat(v) for v in m.groups())
        out.append(Partition(table, name, lower, upper))
    return sorted(out, key=lambda p: (p.lower is None, p.lower or dt.datetime.min))


def _add_month(conn: Connection, table: str, month: dt.datetime) -> str:
    name = partition_name(table, month)
    lower, upper = month, add_months(month, 1)
    bounds = {"lo": lower, "hi": upper}
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)'))
    default = default_name(table)
    stray = conn.scalar(
        text(f'SELECT 1 FROM "{default}" WHERE at >= :lo AND at < :hi LIMIT 1'), bounds
    )
    if stray:  # the month began before its partition existed: its rows move over
        conn.execute(
            text(f'WITH moved AS (DELETE FROM "{default}" WHERE at >= :lo AND at < :hi'
                 f' RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'),
            bounds,
        )  # fmt: skip
    # Bounds as literals: DDL takes no parameters. Both are midnight on the 1st.
    conn.execute(
        text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}"'
             f" FOR VALUES FROM ('{lower:%Y-%m-%d}') TO ('{upper:%Y-%m-%d}')")
    )  # fmt: skip
    return name


def ensure_partitions(
    conn: Connection,
    months_ahead: int = MONTHS_AHEAD,
    *,
    also: Iterable[dt.datetime] = (),
    today: dt.datetime | None = None,
) -> list[str]:
    """Create, where missing, the DEFAULT partition and the monthly partitions of this
    month, the `months_ahead` after it, and the months of `also` (the migration's months
    that hold rows). The names of the partitions created; nothing on SQLite or before
    migration 0015. Runs in the caller's transaction."""
    if conn.dialect.name != "postgresql":
        return []
    this_month = month_start(today or now())
    wanted = {add_months(this_month, n) for n in range(months_ahead + 1)}
    wanted |= {month_start(m) for m in also}
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    created: list[str] = []
    for table in TABLES:
        if not is_partitioned(conn, table):
            continue
        present = partitions(conn, table)
        if not any(p.is_default for p in present):
            name = default_name(table)
            conn.execute(text(f'CREATE TABLE "{name}" PARTITION OF "{table}" DEFAULT'))
            created.append(name)
        have = {p.lower for p in present}
        for month in sorted(wanted - have):
            created.append(_add_month(conn, table, month))
    return created


def drop_expired(conn: Connection, hit_days: Sequence[int], at: dt.datetime) -> list[str]:
    """DETACH and DROP each month of `hits` whose whole range is older than the longest
    retention in `hit_days` (one entry per company, 0: keep for ever, which keeps every
    month). Skips a month holding an unjudged hit or the highest id. Runs in the
    caller's transaction; the names of the partitions dropped."""
    if not hit_days or min(hit_days) <= 0 or not is_partitioned(conn, "hits"):
        return []
    cutoff = at - dt.timedelta(days=max(hit_days))
    old = [p for p in partitions(conn, "hits") if p.upper is not None and p.upper <= cutoff]
    if not old:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    judged = conn.scalar(text("SELECT position FROM cursors WHERE name = :n"), {"n": ENRICH_CURSOR})
    top = conn.scalar(text("SELECT max(id) FROM hits"))
    dropped: list[str] = []
    for p in old:
        # No hit may land in the month between the look and the drop (readers go on).
        conn.execute(text(f'LOCK TABLE "{p.name}" IN EXCLUSIVE MODE'))
        newest = conn.scalar(text(f'SELECT max(id) FROM "{p.name}"'))
        if newest is not None and (judged is None or newest > judged or newest >= top):
            continue  # enrich has not read it all yet, or it holds the top id
        conn.execute(text(f'ALTER TABLE hits DETACH PARTITION "{p.name}"'))
        conn.execute(text(f'DROP TABLE "{p.name}"'))
        dropped.append(p.name)
    return dropped


async def maintain(db: Database, hit_days: Sequence[int], at: dt.datetime | None = None) -> int:
    """A retention pass's share on PostgreSQL: the coming months ready, expired months
    of raw hits dropped. Each step in its own short transaction; a step that cannot get
    its lock in time is left for the next pass. The number of partitions dropped."""
    if db.is_sqlite:
        return 0
    at = at or now()
    try:
        async with db.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            created = await conn.run_sync(lambda c: ensure_partitions(c, today=at))
        if created:
            log.info("partitions: created %s", ", ".join(created))
        async with db.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            dropped = await conn.run_sync(drop_expired, list(hit_days), at)
    except DBAPIError as exc:  # a lock timeout, most likely: the next pass tries again
        log.warning("partitions: maintenance skipped this pass (%s)", exc.orig)
        return 0
    if dropped:
        log.info("partitions: dropped %s (older than every company's hit retention)", dropped)
    return len(dropped)
