"""event webhooks: subscriptions and their delivery outbox

Revision ID: 0012
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("verdicts", sa.JSON(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("after_event_id", BigId, nullable=False, server_default="0"),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_webhooks")),
    )
    op.create_index("ix_event_webhooks_company_id", "event_webhooks", ["company_id"])
    op.create_table(
        "event_webhook_deliveries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("event_id", BigId, nullable=True),
        sa.Column("event_type", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_webhook_deliveries")),
        sa.UniqueConstraint("webhook_id", "source", name="uq_event_webhook_deliveries_source"),
    )
    op.create_index(
        "ix_event_webhook_deliveries_queue",
        "event_webhook_deliveries",
        ["webhook_id", "lead_id", "status", "id"],
    )
    op.create_index(
        "ix_event_webhook_deliveries_due", "event_webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_event_webhook_deliveries_lead", "event_webhook_deliveries", ["lead_id"])


def downgrade() -> None:
    op.drop_table("event_webhook_deliveries")
    op.drop_table("event_webhooks")
