"""send schedules: a campaign's schedule, and when each of its messages is sent

Revision ID: 0013
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN, not batch mode: on SQLite batch mode rebuilds the table, which
# fails once other tables' rows point at it (SQLite 3.35+ drops a column in place).
def upgrade() -> None:
    op.add_column("campaigns", sa.Column("schedule", sa.JSON(), nullable=True))
    op.add_column("messages", sa.Column("scheduled_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "scheduled_at")
    op.drop_column("campaigns", "schedule")
