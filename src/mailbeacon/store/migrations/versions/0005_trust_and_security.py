"""trust and security: device_model on events, forward_link on campaigns and messages,
session epochs and login throttling, custom fields on leads

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as b:
        b.add_column(sa.Column("device_model", sa.String(length=100), nullable=True))
    with op.batch_alter_table("campaigns") as b:
        b.add_column(
            sa.Column("forward_link", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("messages") as b:
        b.add_column(
            sa.Column("forward_link", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("leads") as b:
        b.add_column(sa.Column("fields", sa.JSON(), nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("leads") as b:
        b.drop_column("fields")
    with op.batch_alter_table("users") as b:
        b.drop_column("session_epoch")
    with op.batch_alter_table("messages") as b:
        b.drop_column("forward_link")
    with op.batch_alter_table("campaigns") as b:
        b.drop_column("forward_link")
    with op.batch_alter_table("events") as b:
        b.drop_column("device_model")
