"""Bring a database's schema up to date with Alembic, from code (no alembic.ini to find)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from mailbeacon.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(conn: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def upgrade(db: Database) -> None:
    """Migrate to head. Idempotent; safe to call at every start."""
    cfg = alembic_config()
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade, cfg)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def is_current(db: Database) -> bool:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current) == head


def upgrade_sync(url: str) -> None:
    async def run() -> None:
        db = Database.unpooled(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())
