"""The proof an erase needs: every table of the database, read back, names the lead nowhere.

The tables are reflected from the database itself, not taken from our metadata, so a
table someone adds later is scanned too. A cell names the lead when it is a lead-id
column (`lead_id`, `*_lead_id`, `leads.id`) holding their id, or when any cell of any
type (text, JSON, binary) holds their address or one of the other words given (a
distinctive last name), in any letter case.

The audit log is the one exception by design: its entry says that the lead of this id
was erased, by whom and when, and names the address only by its SHA-256.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, func, select

from mailbeacon.store import Database

# (table, column) allowed to keep the erased lead's id: the audit entry of the erase.
KEEPS_ID = {("audit_log", "lead_id")}


def _names_lead(table: str, column: str) -> bool:
    return column == "lead_id" or column.endswith("_lead_id") or (table, column) == ("leads", "id")


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


async def traces(db: Database, lead_id: int, *words: str) -> list[str]:
    """`table.column` of every cell that names the lead (by id, or by one of `words`)."""
    needles = [w.lower() for w in words]
    found: list[str] = []
    async with db.connect() as conn:
        reflected = MetaData()
        await conn.run_sync(reflected.reflect)
        assert "leads" in reflected.tables and "hits" in reflected.tables
        for table in reflected.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                for column in table.columns:
                    value = row[column.name]
                    if value is None:
                        continue
                    where = f"{table.name}.{column.name}"
                    if (
                        _names_lead(table.name, column.name)
                        and value == lead_id
                        and (table.name, column.name) not in KEEPS_ID
                    ):
                        found.append(where)
                    text = _text(value).lower()
                    found.extend(f"{where} ({w})" for w in needles if w in text)
    return found


async def row_counts(db: Database) -> dict[str, int]:
    """How many rows each table holds: to show that a hit on erased mail stored nothing."""
    async with db.connect() as conn:
        reflected = MetaData()
        await conn.run_sync(reflected.reflect)
        return {
            t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in reflected.sorted_tables
        }
