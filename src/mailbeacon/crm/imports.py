"""Importing leads from a CSV file: validate every row, then write in bulk.

The file: UTF-8 with or without a BOM, comma- or semicolon-separated (whichever makes
an `email` column of the header), quoted fields as spreadsheets write them. `email` is
required; `first_name`, `last_name`, `timezone` and `tracking` (true/false: whether the
lead's mail may track them, see docs/tracking.md) are the lead's own columns; every
other column is a custom field, named in merge-field shape ("Company Name" ->
`company_name`, see `crm.fields`). Lines count records as a spreadsheet shows rows:
the header is line 1, the first lead line 2.

A lead whose address the company already has (any case) is updated, never doubled:
a non-empty cell overwrites, an empty cell keeps what the lead had, custom fields are
merged into the lead's own. A bad row is rejected with its line and the reason, and
the good rows still import. So are new leads past the plan's limit (`crm.limits`):
the rows that fit are imported, each one past it is rejected naming the limit. The
sales roles, who see only their own leads, cannot update a lead another user owns
through a file either.

Speed: rows are checked in Python (addresses through a cached per-domain check, the full
validator only for unusual ones), then written set-based, `CHUNK` rows per transaction.
SQLite: one INSERT ... ON CONFLICT DO UPDATE executemany, one read of the ids, one
executemany into the list. PostgreSQL: one statement a chunk (`_UPSERT_PG`). Short
transactions keep SQLite's one write lock free for the tracking edge between chunks (so
an import is not all-or-nothing: a crash keeps the chunks committed; importing the same
file again is safe).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mailbeacon.crm.access import sees_only_own_leads
from mailbeacon.crm.errors import CrmError, Invalid
from mailbeacon.crm.fields import MAX_FIELDS, MAX_VALUE, field_name
from mailbeacon.crm.leads import ERASED, check_timezone
from mailbeacon.crm.limits import lead_room
from mailbeacon.crm.lists import get_list
from mailbeacon.crm.users import Principal, normalize_email
from mailbeacon.store import Database, now
from mailbeacon.store.schema import leads

CHUNK = 2000
PG_WRITERS = 2  # chunks written at once on PostgreSQL (see `import_leads`)
KNOWN = ("email", "first_name", "last_name", "timezone", "tracking")
# How a spreadsheet may say yes or no in the `tracking` column (any case).
YES, NO = frozenset({"true", "yes", "1", "on"}), frozenset({"false", "no", "0", "off"})
MAX_NAME = 200
MAX_EMAIL = 320

# (rows written so far, rows to write): called after each committed chunk.
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class ImportResult:
    imported: int = 0  # new leads
    updated: int = 0  # leads that existed (same address, any case)
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line", "reason"}

    def as_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "updated": self.updated, "rejected": self.rejected}


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    first_name: str | None
    last_name: str | None
    timezone: str | None
    fields: dict[str, str]
    tracking: bool | None = None  # None: the cell was empty (or no such column)


# -- reading the file ---------------------------------------------------------------

_LOCAL = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=65536)
def _domain_problem(domain: str) -> str | None:
    """Why addresses at this domain are refused (None: fine); one check per domain."""
    try:
        validate_email(
            f"a@{domain}",
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        )
    except EmailNotValidError as e:
        return f"email: {e}"
    return None


def import_email(raw: str) -> str:
    """`normalize_email`, fast for the common shape: an ASCII dot-atom local part at a
    domain checked once; anything else goes through the full validator."""
    local, at, domain = raw.lower().rpartition("@")
    if at and len(local) <= 64 and len(raw) <= 254 and domain.isascii() and _LOCAL.match(local):
        problem = _domain_problem(domain)
        if problem:
            raise Invalid(problem, field="email")
        return f"{local}@{domain}"
    return normalize_email(raw)


@lru_cache(maxsize=1024)
def _timezone(tz: str) -> str | None:
    return check_timezone(tz)


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # drops the BOM spreadsheets write first
    except UnicodeDecodeError as e:
        raise Invalid(
            f"the file is not UTF-8 text (byte {e.start}): save it as 'CSV UTF-8'", field="file"
        ) from None


def _dialect(header_line: str) -> str:
    """`,` or `;`: the one that gives the header an email column (else the most columns)."""
    best, best_key = ",", (-1, -1)
    for delimiter in (",", ";"):
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        has_email = any(c.strip().lower() == "email" for c in cells)
        key = (int(has_email), len(cells))
        if key > best_key:
            best, best_key = delimiter, key
    return best


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each column is: the lead's own by position, custom fields as (position,
    name). Rows are read by position: a dict per row cost a third of the import."""

    width: int
    email: int
    first_name: int | None
    last_name: int | None
    timezone: int | None
    custom: tuple[tuple[int, str], ...]
    tracking: int | None = None


def _columns(header: list[str]) -> Layout:
    """The layout of the header row; raises Invalid for the whole file."""
    names: list[str | None] = []
    for index, title in enumerate(header, start=1):
        name = title.strip().lower()
        if name not in KNOWN:
            name = field_name(title)
        if not name:
            if title.strip():
                raise Invalid(f"column {index} ({title!r}) has no usable name", field="file")
            names.append(None)  # an untitled (usually empty) column is left out
            continue
        if name in names:
            raise Invalid(f"column {index}: {name} appears twice in the header", field="file")
        names.append(name)
    if "email" not in names:
        raise Invalid("the header row (line 1) has no email column", field="file")
    custom = tuple((i, n) for i, n in enumerate(names) if n is not None and n not in KNOWN)
    if len(custom) > MAX_FIELDS:
        raise Invalid(f"more than {MAX_FIELDS} custom field columns", field="file")
    where = {n: i for i, n in enumerate(names) if n in KNOWN}
    return Layout(
        len(names),
        where["email"],
        where.get("first_name"),
        where.get("last_name"),
        where.get("timezone"),
        custom,
        where.get("tracking"),
    )


def _name(cells: list[str], index: int | None, key: str) -> str | None:
    if index is None:
        return None
    value = cells[index].strip()
    if not value:
        return None
    if len(value) > MAX_NAME:
        raise Invalid(f"{key} is longer than {MAX_NAME} characters")
    if _CONTROL.search(value):
        raise Invalid(f"{key} contains a line break or control character")
    return value


def _row(line: int, layout: Layout, cells: list[str]) -> Row:
    """One record as a lead; raises Invalid with the reason."""
    if len(cells) != layout.width:
        raise Invalid(f"{len(cells)} fields where the header has {layout.width}")
    raw = cells[layout.email].strip()
    if not raw:
        raise Invalid("email is empty")
    if len(raw) > MAX_EMAIL:
        raise Invalid(f"email is longer than {MAX_EMAIL} characters")
    email = import_email(raw)
    first = _name(cells, layout.first_name, "first_name")
    last = _name(cells, layout.last_name, "last_name")
    tz = cells[layout.timezone].strip() if layout.timezone is not None else ""
    fields: dict[str, str] = {}
    for index, key in layout.custom:
        value = cells[index].strip()
        if value:
            if len(value) > MAX_VALUE:
                raise Invalid(f"{key} is longer than {MAX_VALUE} characters")
            fields[key] = value
    tracking = _yes_no(cells[layout.tracking]) if layout.tracking is not None else None
    return Row(line, email, first, last, _timezone(tz) if tz else None, fields, tracking)


def _yes_no(cell: str) -> bool | None:
    value = cell.strip().lower()
    if not value:
        return None
    if value in YES or value in NO:
        return value in YES
    raise Invalid(f"tracking is {cell.strip()!r}: write true or false (yes/no, 1/0)")


def parse(text: str) -> tuple[list[Row], list[dict[str, Any]]]:
    """The good rows and the rejected lines of a CSV text (pure). A file-wide problem
    (no header, no email column) raises Invalid for the whole file."""
    # Any line ending ends the header (a lone "\r" too, as old Mac spreadsheets write).
    first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first_line.strip():
        raise Invalid("the file is empty: line 1 must be the header row", field="file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_dialect(first_line))
    rows: list[Row] = []
    rejected: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    try:
        layout = _columns(next(reader))
        for line, cells in enumerate(reader, start=2):
            if not "".join(cells).strip():  # (a generator over the cells cost 25%)
                continue  # a blank line is nothing, not an error
            try:
                row = _row(line, layout, cells)
            except CrmError as e:
                rejected.append({"line": line, "reason": e.message})
                continue
            if row.email in seen:
                reason = f"{row.email} is on line {seen[row.email]} already"
                rejected.append({"line": line, "reason": reason})
                continue
            seen[row.email] = line
            rows.append(row)
    except csv.Error as e:  # e.g. a quote never closed: the rest cannot be read
        raise Invalid(f"line {reader.line_num}: {e}", field="file") from None
    return rows, rejected


# -- writing ------------------------------------------------------------------------

# Written as the driver's own SQL: SQLAlchemy's per-row parameter processing cost more
# than the database's work at 100,000 rows. Custom fields merge into the lead's own
# (the file's keys win, others are kept); an empty cell keeps the lead's value.
_UPSERT = (
    "INSERT INTO leads (company_id, email, first_name, last_name, timezone, fields,"
    " owner_user_id, score, status, created_at) VALUES ({values}, 0, 'subscribed', {last})"
    " ON CONFLICT (company_id, email) DO UPDATE SET"
    " first_name = COALESCE(excluded.first_name, leads.first_name),"
    " last_name = COALESCE(excluded.last_name, leads.last_name),"
    " timezone = COALESCE(excluded.timezone, leads.timezone),"
    " fields = {merge}"
)
_MERGE = {
    "sqlite": "json_patch(CASE WHEN json_type(leads.fields) = 'object' THEN leads.fields"
    " ELSE '{}' END, excluded.fields)",
    "postgresql": "(CASE WHEN json_typeof(leads.fields) = 'object' THEN leads.fields::jsonb"
    " ELSE '{}'::jsonb END || excluded.fields::jsonb)::json",
}
_MEMBERS = (
    "INSERT INTO list_members (list_id, lead_id, company_id, added_at) VALUES ({values})"
    " ON CONFLICT DO NOTHING"
)


async def _existing(
    conn: AsyncConnection, company_id: int, emails: list[str]
) -> dict[str, tuple[int, int | None]]:
    """email -> (lead id, owner) of the chunk's addresses the company has already
    (SQLite). Driver SQL: compiling 2,000 bound parameters per chunk cost more than the
    query."""
    if conn.dialect.name == "postgresql":
        found = await conn.execute(
            select(leads.c.email, leads.c.id, leads.c.owner_user_id).where(
                leads.c.company_id == company_id,
                leads.c.email.in_(emails),
                leads.c.status != ERASED,
            )
        )
        return {r[0]: (r[1], r[2]) for r in found}
    marks = ", ".join("?" * len(emails))
    rows = await conn.exec_driver_sql(
        "SELECT email, id, owner_user_id FROM leads"
        f" WHERE company_id = ? AND email IN ({marks}) AND status <> ?",
        (company_id, *emails, ERASED),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _records(chunk: list[Row]) -> list[tuple[Any, ...]]:
    return [
        (
            r.email,
            r.first_name,
            r.last_name,
            r.timezone,
            json.dumps(r.fields, separators=(",", ":"), ensure_ascii=False),
        )
        for r in chunk
    ]


def _refused(chunk: list[Row], theirs: set[str]) -> list[dict[str, Any]]:
    return [
        {"line": r.line, "reason": f"{r.email} is a lead of another user"}
        for r in chunk
        if r.email in theirs
    ]


async def _write_chunk(
    conn: AsyncConnection, who: Principal, chunk: list[Row], list_id: int | None
) -> tuple[int, int, list[dict[str, Any]]]:
    """Write one chunk; (imported, updated, rejected lines)."""
    chunk, rejected = await _within_plan(conn, who.company_id, chunk)
    if not chunk:
        return 0, 0, rejected
    if conn.dialect.name == "postgresql":
        imported, updated, refused = await _upsert_chunk_pg(conn, who, chunk, list_id, now())
        lines = {r["line"] for r in refused}
        await _set_tracking(conn, who.company_id, [r for r in chunk if r.line not in lines])
        return imported, updated, rejected + refused
    existing = await _existing(conn, who.company_id, [r.email for r in chunk])
    if sees_only_own_leads(who.role):
        theirs = {e for e, (_, owner) in existing.items() if owner != who.user_id}
        rejected.extend(_refused(chunk, theirs))
        chunk = [r for r in chunk if r.email not in theirs]
    if not chunk:
        return 0, 0, rejected
    await _insert_chunk(conn, who, _records(chunk), list_id, now())
    await _set_tracking(conn, who.company_id, chunk)
    updated = sum(1 for r in chunk if r.email in existing)
    return len(chunk) - updated, updated, rejected


async def _within_plan(
    conn: AsyncConnection,
    company_id: int,
    chunk: list[Row],
) -> tuple[list[Row], list[dict[str, Any]]]:
    """The chunk's rows that fit the plan's lead limit, and the rejected rest: updates
    of existing leads always fit; new leads past the limit are rejected, each line with
    the limit and the plan in its reason (the rows before it still import). Only a plan
    with a limit pays for reading which leads exist."""
    room, reason = await lead_room(conn, company_id)
    if room is None:
        return chunk, []
    existing = await _existing(conn, company_id, [r.email for r in chunk])
    kept: list[Row] = []
    over: list[dict[str, Any]] = []
    for row in chunk:
        if row.email in existing:
            kept.append(row)
        elif room > 0:
            room -= 1
            kept.append(row)
        else:
            over.append({"line": row.line, "reason": reason})
    return kept, over


async def _insert_chunk(
    conn: AsyncConnection,
    who: Principal,
    records: list[tuple[Any, ...]],
    list_id: int | None,
    at: dt.datetime,
) -> None:
    """SQLite: executemany of the upsert (sqlite3 loops in C), then the list."""
    created = at.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's stored text format
    company, owner = who.company_id, who.user_id
    await conn.exec_driver_sql(
        _UPSERT.format(values="?, ?, ?, ?, ?, ?, ?", last="?", merge=_MERGE["sqlite"]),
        [(company, *r, owner, created) for r in records],
    )
    if list_id is not None:
        marks = ", ".join("?" * len(records))
        ids = await conn.exec_driver_sql(
            f"SELECT id FROM leads WHERE company_id = ? AND email IN ({marks})",
            (company, *(r[0] for r in records)),
        )
        await conn.exec_driver_sql(
            _MEMBERS.format(values="?, ?, ?, ?"),
            [(list_id, i[0], company, created) for i in ids],
        )


# PostgreSQL: the whole chunk in one statement and one round trip. The rows arrive as
# arrays (asyncpg sends them binary); the upsert says which rows it inserted (`xmax` is
# 0 only on a row version this statement created), so no read of the existing leads
# comes first; the list memberships are added from what the upsert returned. A sales
# role's upsert updates only their own leads ($5): a row it leaves out is another
# user's lead. (Before: a read of the existing leads, CREATE TEMPORARY TABLE, COPY,
# INSERT ... SELECT, the list: five round trips a chunk, 9.7 s for 100,000 rows.)
_UPSERT_PG = (
    "WITH rows AS (SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[],"
    " $10::text[]) AS r(email, first_name, last_name, timezone, fields)),"
    " written AS (INSERT INTO leads (company_id, email, first_name, last_name, timezone,"
    " fields, owner_user_id, score, status, created_at)"
    " SELECT $1, email, first_name, last_name, timezone, fields::json, $2, 0,"
    " 'subscribed', $3 FROM rows"
    " ON CONFLICT (company_id, email) DO UPDATE SET"
    " first_name = COALESCE(excluded.first_name, leads.first_name),"
    " last_name = COALESCE(excluded.last_name, leads.last_name),"
    " timezone = COALESCE(excluded.timezone, leads.timezone),"
    f" fields = {_MERGE['postgresql']}"
    " WHERE $5::int IS NULL OR leads.owner_user_id = $5"
    " RETURNING id, email, xmax = 0 AS inserted),"
    " members AS (INSERT INTO list_members (list_id, lead_id, company_id, added_at)"
    " SELECT $4, id, $1, $3 FROM written WHERE $4::int IS NOT NULL ON CONFLICT DO NOTHING)"
    " SELECT email, inserted FROM written"
)


async def _upsert_chunk_pg(
    conn: AsyncConnection,
    who: Principal,
    chunk: list[Row],
    list_id: int | None,
    at: dt.datetime,
) -> tuple[int, int, list[dict[str, Any]]]:
    columns = list(zip(*_records(chunk), strict=True)) if chunk else [()] * 5
    only = who.user_id if sees_only_own_leads(who.role) else None
    written = await conn.exec_driver_sql(
        _UPSERT_PG,
        (who.company_id, who.user_id, at, list_id, only, *(list(c) for c in columns)),
    )
    inserted = dict(written.all())
    theirs = {r.email for r in chunk if r.email not in inserted}
    imported = sum(1 for new in inserted.values() if new)
    return imported, len(inserted) - imported, _refused(chunk, theirs)


async def _set_tracking(conn: AsyncConnection, company_id: int, chunk: list[Row]) -> None:
    """The `tracking` cells that say something, in at most two statements per chunk
    (an empty cell keeps the lead's setting; a new lead starts tracked)."""
    for value in (True, False):
        emails = [r.email for r in chunk if r.tracking is value]
        if emails:
            await conn.execute(
                update(leads)
                .where(leads.c.company_id == company_id, leads.c.email.in_(emails))
                .values(tracking=value)
            )


def _chunks(rows: list[Row], size: int) -> Iterator[list[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def import_leads(
    db: Database,
    who: Principal,
    data: bytes,
    *,
    list_id: int | None = None,
    progress: Progress | None = None,
    chunk_size: int = CHUNK,
) -> ImportResult:
    """Import a CSV file's leads for the caller's company (see the module docstring);
    `progress(done, total)` after each committed chunk, for a progress bar."""
    if list_id is not None:
        async with db.connect() as conn:
            await get_list(conn, who.company_id, list_id)
    rows, rejected = parse(decode(data))
    result = ImportResult(rejected=rejected)
    done = 0
    if progress:
        progress(0, len(rows))
    # PostgreSQL writes two chunks at once, on two connections: the database's work per
    # row (the upsert, its indexes and six foreign-key checks) is most of an import
    # there, and two server processes use both cores. Chunks never share an address
    # (the file's duplicates are rejected first), so they never wait on each other.
    # SQLite has one writer: one chunk at a time, the edge's writes in between.
    writers = asyncio.Semaphore(1 if db.is_sqlite else PG_WRITERS)

    async def write(chunk: list[Row]) -> None:
        nonlocal done
        async with writers, db.begin() as conn:
            imported, updated, refused = await _write_chunk(conn, who, chunk, list_id)
        result.imported += imported
        result.updated += updated
        result.rejected.extend(refused)
        done += len(chunk)
        if progress:
            progress(done, len(rows))

    tasks = [asyncio.ensure_future(write(chunk)) for chunk in _chunks(rows, chunk_size)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    result.rejected.sort(key=lambda r: r["line"])
    return result
