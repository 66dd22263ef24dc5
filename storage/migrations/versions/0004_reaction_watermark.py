"""Reconciliation: how far the channel's history, and each message's timeline reactions, were
last read back from Slack (Slack ts strings).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("reactions_read_ts", sa.String(32), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("history_read_ts", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("history_read_ts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reactions_read_ts")
