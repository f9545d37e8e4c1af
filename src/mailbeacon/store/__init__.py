"""Storage: the schema, its migrations and the one way to reach the database."""

from mailbeacon.store.db import Database, async_url, now

__all__ = ["Database", "async_url", "now"]
