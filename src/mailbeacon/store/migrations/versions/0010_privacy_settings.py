"""privacy settings: how long readers' addresses and user agents are kept, per company

`hit_retention_days` used to mean "forget addresses after"; it now means "delete raw
hits after", and `address_retention_days` takes the old meaning. Each company's value
moves across, so an upgrade deletes no hit nobody asked to delete.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "companies",
        sa.Column("address_retention_days", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute("UPDATE companies SET address_retention_days = hit_retention_days")
    op.execute("UPDATE companies SET hit_retention_days = 0")


def downgrade() -> None:
    op.execute("UPDATE companies SET hit_retention_days = address_retention_days")
    op.drop_column("companies", "address_retention_days")
