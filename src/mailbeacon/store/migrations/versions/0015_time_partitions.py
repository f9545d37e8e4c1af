"""time partitions: `hits` and `events` RANGE-partitioned by `at` on PostgreSQL

Revision ID: 0015
Revises: 0007

PostgreSQL only (SQLite keeps its plain tables; this does nothing there). Each table is
renamed aside, created again partitioned by month (store.partitions: the months that
hold rows, at most `MONTHS_BACK` back, this month and three ahead, and a DEFAULT
partition), its rows copied over, the old table dropped. The id sequence is the same
one, handed to the new table, so no id is ever handed out twice.

A primary key or unique constraint on a partitioned table must hold the partition key:
hits and events get PRIMARY KEY (id, at), and `uq_events_hit_type` becomes
(hit_id, type, at). The same guarantee: an event's `at` is its hit's (enrich.pipeline),
so two events of one hit and type always share it. No foreign key references either
table. Beside the btree indexes the queries use, a BRIN index on `at` (a few pages for
a table of billions of rows appended in time order) serves retention's age scans.

The upgrade holds an ACCESS EXCLUSIVE lock on both tables while it copies them: stop
the edges and stages, or run it while the tables are small.
"""

from alembic import op
from sqlalchemy import text

from mailbeacon.store.db import now
from mailbeacon.store.partitions import add_months, ensure_partitions, month_start

revision = "0015"
down_revision = "0007"
branch_labels = None
depends_on = None

# Older rows than this go to the DEFAULT partition rather than one table a month each.
MONTHS_BACK = 120

# (table, its unique constraints, its other indexes) as the partitioned tables have them.
PARTITIONED = {
    "hits": (
        {"pk_hits": "PRIMARY KEY (id, at)"},
        {"ix_hits_message_kind": "(message_id, kind)", "ix_hits_at_brin": "USING brin (at)"},
    ),
    "events": (
        {"pk_events": "PRIMARY KEY (id, at)", "uq_events_hit_type": "UNIQUE (hit_id, type, at)"},
        {
            "ix_events_message_at": "(message_id, at)",
            "ix_events_lead_at": "(lead_id, at)",
            "ix_events_campaign": "(campaign_id)",
            "ix_events_at_brin": "USING brin (at)",
        },
    ),
}
# ... and as the plain tables of 0001 had them.
PLAIN = {
    "hits": ({"pk_hits": "PRIMARY KEY (id)"}, {"ix_hits_message_kind": "(message_id, kind)"}),
    "events": (
        {"pk_events": "PRIMARY KEY (id)", "uq_events_hit_type": "UNIQUE (hit_id, type)"},
        {
            "ix_events_message_at": "(message_id, at)",
            "ix_events_lead_at": "(lead_id, at)",
            "ix_events_campaign": "(campaign_id)",
        },
    ),
}


def _drop_keys(old: str, table: str, shape: dict) -> None:
    """Free the constraint and index names (they are per schema) for the new table."""
    constraints, indexes = shape[table]
    for name in constraints:
        op.execute(f'ALTER TABLE "{old}" DROP CONSTRAINT IF EXISTS "{name}"')
    for name in indexes:
        op.execute(f'DROP INDEX IF EXISTS "{name}"')


def _add_keys(table: str, shape: dict) -> None:
    constraints, indexes = shape[table]
    for name, definition in constraints.items():
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes.items():
        op.execute(f'CREATE INDEX "{name}" ON "{table}" {definition}')


def _rebuild(table: str, partitioned: bool, old_shape: dict) -> str:
    """Rename `table` aside and create it again, empty, partitioned or plain; the name of
    the old table. The id sequence stays where it is until `_finish` hands it over."""
    old = f"{table}_{'unpartitioned' if partitioned else 'partitioned'}"
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    _drop_keys(old, table, old_shape)
    # LIKE keeps the column order (so SELECT * copies), NOT NULLs and the id's nextval.
    by = " PARTITION BY RANGE (at)" if partitioned else ""
    op.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS){by}')
    return old


def _finish(table: str, old: str, new_shape: dict) -> None:
    bind = op.get_bind()
    seq = bind.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": old})
    op.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    if seq:
        op.execute(f'ALTER SEQUENCE {seq} OWNED BY "{table}".id')
        # The same sequence, so it is already past every id; only set it if a row was
        # written with an explicit id beyond it (never back: an id is never reused).
        top = bind.scalar(text(f'SELECT max(id) FROM "{table}"'))
        if top is not None and top > bind.scalar(text(f"SELECT last_value FROM {seq}")):
            bind.execute(text("SELECT setval(CAST(:s AS regclass), :v)"), {"s": seq, "v": top})
    op.execute(f'DROP TABLE "{old}"')  # with its partitions, on the way down
    _add_keys(table, new_shape)
    op.execute(f'ANALYZE "{table}"')


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    floor = add_months(month_start(now()), -MONTHS_BACK)
    months = bind.scalars(
        text("SELECT DISTINCT date_trunc('month', at) AS m FROM hits WHERE at >= :f"
             " UNION SELECT DISTINCT date_trunc('month', at) FROM events WHERE at >= :f"),
        {"f": floor},
    ).all()  # fmt: skip
    olds = {t: _rebuild(t, True, PLAIN) for t in PARTITIONED}
    ensure_partitions(bind, also=months)
    for table, old in olds.items():
        _finish(table, old, PARTITIONED)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in PLAIN:
        old = _rebuild(table, False, PARTITIONED)
        _finish(table, old, PLAIN)
