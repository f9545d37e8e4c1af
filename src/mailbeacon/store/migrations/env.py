"""Alembic environment: always run with a connection handed in by `store.migrate`."""

from alembic import context

# Every module that defines tables, so autogenerate sees the whole model.
from mailbeacon.store import (  # noqa: F401
    schema_analytics,
    schema_automation,
    schema_scoring,
    schema_users,
    schema_webhooks,
)
from mailbeacon.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `mailbeacon migrate`
    raise SystemExit("run migrations with `mailbeacon migrate`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
