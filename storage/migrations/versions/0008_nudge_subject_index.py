"""Nudges by subject: replanning a subject (cancel what is pending, plan the next) reads its
rows by subject and status, which the due index (status, not_before) cannot find without
scanning every pending nudge.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_nudges_subject", "nudges", ["subject", "status"])


def downgrade() -> None:
    op.drop_index("ix_nudges_subject", table_name="nudges")
