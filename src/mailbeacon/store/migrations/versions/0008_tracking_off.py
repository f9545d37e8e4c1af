"""tracking off: per lead (`leads.tracking`), per campaign and per message (`track_opens`,
`track_clicks`); campaigns' old tag markers become the columns

Revision ID: 0008
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

# Where campaigns kept their switches before these columns (the composer wrote them).
OLD_MARKERS = {"track_opens": "tracking:opens-off", "track_clicks": "tracking:clicks-off"}


def _switch(table: str) -> None:
    with op.batch_alter_table(table) as b:
        for name in ("track_opens", "track_clicks"):
            b.add_column(sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.true()))


def _tags(value: object) -> list[str]:
    if isinstance(value, str):  # a JSON column read through a plain table() is text
        value = json.loads(value)
    return [str(t) for t in value] if isinstance(value, list) else []


def upgrade() -> None:
    with op.batch_alter_table("leads") as b:
        b.add_column(sa.Column("tracking", sa.Boolean(), nullable=False, server_default=sa.true()))
    _switch("campaigns")
    _switch("messages")

    conn = op.get_bind()
    campaigns = sa.table(
        "campaigns",
        sa.column("id", sa.Integer),
        sa.column("tags", sa.JSON),
        sa.column("track_opens", sa.Boolean),
        sa.column("track_clicks", sa.Boolean),
    )
    messages = sa.table(
        "messages",
        sa.column("campaign_id", sa.Integer),
        sa.column("track_opens", sa.Boolean),
        sa.column("track_clicks", sa.Boolean),
    )
    rows = conn.execute(sa.select(campaigns.c.id, campaigns.c.tags)).all()
    for campaign_id, raw in rows:
        tags = _tags(raw)
        off = {col: marker in tags for col, marker in OLD_MARKERS.items()}
        if not any(off.values()):
            continue
        kept = [t for t in tags if t not in OLD_MARKERS.values()]
        switches = {col: not is_off for col, is_off in off.items()}
        conn.execute(
            sa.update(campaigns).where(campaigns.c.id == campaign_id).values(tags=kept, **switches)
        )
        # The mail already sent went out as the campaign said: the report's `not_tracked`
        # counts it from the messages.
        conn.execute(
            sa.update(messages).where(messages.c.campaign_id == campaign_id).values(**switches)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as b:
        b.drop_column("track_clicks")
        b.drop_column("track_opens")
    with op.batch_alter_table("campaigns") as b:
        b.drop_column("track_clicks")
        b.drop_column("track_opens")
    with op.batch_alter_table("leads") as b:
        b.drop_column("tracking")
