"""analytics rollup tables (see store/schema_analytics.py)

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("dim", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "dim", "key", name=op.f("pk_rollup_counts")),
    )
    op.create_table(
        "rollup_campaign_leads",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("any_open", sa.Boolean(), nullable=False),
        sa.Column("human_open", sa.Boolean(), nullable=False),
        sa.Column("inferred_open", sa.Boolean(), nullable=False),
        sa.Column("human_click", sa.Boolean(), nullable=False),
        sa.Column("unsubscribed", sa.Boolean(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("campaign_id", "lead_id", name=op.f("pk_rollup_campaign_leads")),
    )
    op.create_table(
        "rollup_forward_readers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("reader", sa.String(length=128), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "reader", name=op.f("pk_rollup_forward_readers")
        ),
    )


def downgrade() -> None:
    op.drop_table("rollup_forward_readers")
    op.drop_table("rollup_campaign_leads")
    op.drop_table("rollup_counts")
