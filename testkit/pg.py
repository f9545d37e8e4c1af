"""A clean PostgreSQL schema for a test: the one reset every PostgreSQL fixture uses."""

from __future__ import annotations

import asyncpg


async def reset_schema(url: str) -> None:
    """End other sessions on the database, then drop and recreate `public` (a server or
    stage of the previous test may still be closing its connections: dropping the schema
    under their last query could deadlock)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
