"""tracking off: per lead (`leads.tracking`), per campaign and per message (`track_opens`,
`track_clicks`); campaigns' old tag markers become the columns

Revision ID: 0008
Revises: 0010
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0010"
branch_labels = None
depends_on = None

# Where campaigns kept their switches before these columns (the composer wrote them).
OLD_MARKERS = {"track_opens": "tracking:opens-off", "track_clicks": "tracking:clicks-off"}


DROPPED = (
    ("messages", "track_clicks"),
    ("messages", "track_opens"),
    ("campaigns", "track_clicks"),
    ("campaigns", "track_opens"),
    ("leads", "tracking"),
)


def _switched(name: str, *more: sa.ColumnClause) -> sa.TableClause:
    """A table as this migration reads it: its two switches and `more` columns."""
    return sa.table(
        name, sa.column("track_opens", sa.Boolean), sa.column("track_clicks", sa.Boolean), *more
    )


def _tags(value: object) -> list[str]:
    if isinstance(value, str):  # a JSON value some drivers hand back as text
        value = json.loads(value)
    return [str(t) for t in value] if isinstance(value, list) else []


def upgrade() -> None:
    # Plain ADD COLUMN with a constant default ('1' is true to both engines): a batch
    # copy of `leads` on SQLite would drop a table that messages point at, and fail.
    for table, column in reversed(DROPPED):
        op.add_column(table, sa.Column(column, sa.Boolean(), nullable=False, server_default="1"))

    conn = op.get_bind()
    campaigns = _switched("campaigns", sa.column("id", sa.Integer), sa.column("tags", sa.JSON))
    messages = _switched("messages", sa.column("campaign_id", sa.Integer))
    rows = conn.execute(sa.select(campaigns.c.id, campaigns.c.tags)).all()
    for campaign_id, raw in rows:
        tags = _tags(raw)
        switches = {col: marker not in tags for col, marker in OLD_MARKERS.items()}
        if all(switches.values()):
            continue
        kept = [t for t in tags if t not in OLD_MARKERS.values()]
        conn.execute(
            sa.update(campaigns).where(campaigns.c.id == campaign_id).values(tags=kept, **switches)
        )
        # The mail already sent went out as the campaign said: the report's `not_tracked`
        # counts it from the messages.
        conn.execute(
            sa.update(messages).where(messages.c.campaign_id == campaign_id).values(**switches)
        )


def downgrade() -> None:
    # The markers come back on the campaigns that had a switch off.
    conn = op.get_bind()
    campaigns = _switched("campaigns", sa.column("id", sa.Integer), sa.column("tags", sa.JSON))
    off = sa.or_(campaigns.c.track_opens.is_(False), campaigns.c.track_clicks.is_(False))
    query = sa.select(
        campaigns.c.id, campaigns.c.tags, campaigns.c.track_opens, campaigns.c.track_clicks
    ).where(off)
    for campaign_id, raw, opens, clicks in conn.execute(query).all():
        on = {"track_opens": opens, "track_clicks": clicks}
        markers = [marker for col, marker in OLD_MARKERS.items() if not on[col]]
        conn.execute(
            sa.update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(tags=[*_tags(raw), *markers])
        )
    for table, column in DROPPED:
        if conn.dialect.name == "sqlite":
            # SQLite drops a plain column in place (3.35+); batch mode would copy the
            # table, and dropping `leads` is refused while foreign keys point at it.
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
