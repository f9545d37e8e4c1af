"""message event groups: each message's events grouped for the who-engaged list, and
a campaign's messages by status in lead order (its "Not opened" and "Bounced" pages)

Revision ID: 0007
Revises: 0013

Backfilled from the events the rollups stage has already counted (up to its cursor);
the stage adds the rest as it reaches them, so nothing is counted twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0013"
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO rollup_message_events (message_id, type, verdict, inferred, forwarded, client,
  link_index, campaign_id, lead_id, company_id, url, n, first_at, last_at, reason)
SELECT message_id, type, verdict, inferred, forwarded, COALESCE(client, ''),
  COALESCE(link_index, -1), MAX(campaign_id), MAX(lead_id), MAX(company_id), MAX(url),
  COUNT(*), MIN(at), MAX(at), MIN(reason)
FROM events
WHERE campaign_id IS NOT NULL
  AND id <= (SELECT COALESCE(MAX(position), 0) FROM cursors WHERE name = 'rollups')
GROUP BY message_id, type, verdict, inferred, forwarded, COALESCE(client, ''),
  COALESCE(link_index, -1)
"""


def upgrade() -> None:
    op.create_table(
        "rollup_message_events",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("verdict", sa.String(length=12), nullable=False),
        sa.Column("inferred", sa.Boolean(), nullable=False),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=False),
        sa.Column("link_index", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "message_id",
            "type",
            "verdict",
            "inferred",
            "forwarded",
            "client",
            "link_index",
            name=op.f("pk_rollup_message_events"),
        ),
    )
    op.execute(BACKFILL)
    op.create_index(
        "ix_messages_campaign_status_lead", "messages", ["campaign_id", "status", "lead_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_messages_campaign_status_lead", table_name="messages")
    op.drop_table("rollup_message_events")
