"""scoring model: each company's model, the engagement it scored, the leads' faded points

Revision ID: 0014
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_models",
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("open_points", sa.Integer(), nullable=False),
        sa.Column("click_points", sa.Integer(), nullable=False),
        sa.Column("forward_points", sa.Integer(), nullable=False),
        sa.Column("unsubscribe_points", sa.Integer(), nullable=False),
        sa.Column("half_life_days", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_scoring_models")),
    )
    op.create_table(
        "score_events",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "key", name=op.f("pk_score_events")),
    )
    op.create_table(
        "lead_scores",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("shown", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_lead_scores")),
    )
    op.create_index("ix_lead_scores_company_id", "lead_scores", ["company_id"])
    op.create_index("ix_lead_scores_refreshed_at", "lead_scores", ["refreshed_at"])
    op.create_index("ix_leads_company_score", "leads", ["company_id", "score"])


def downgrade() -> None:
    op.drop_index("ix_leads_company_score", table_name="leads")
    op.drop_table("lead_scores")
    op.drop_table("score_events")
    op.drop_table("scoring_models")
