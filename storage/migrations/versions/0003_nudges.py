"""Nudges (the schedule), action-item answers, review meetings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nudges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("slot", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("message_channel", sa.String(32), nullable=True),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("kind", "subject", "slot", name="uq_nudges_key"),
    )
    op.create_index("ix_nudges_due", "nudges", ["status", "not_before"])
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("snoozed_until", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("status_note", sa.String(500), nullable=True))
        batch.add_column(sa.Column("dm_channel", sa.String(32), nullable=True))
        batch.add_column(sa.Column("dm_ts", sa.String(32), nullable=True))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("meeting_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("meeting_attendees", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("meeting_requested", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("meeting_requested")
        batch.drop_column("meeting_attendees")
        batch.drop_column("meeting_at")
    with op.batch_alter_table("action_items") as batch:
        batch.drop_column("dm_ts")
        batch.drop_column("dm_channel")
        batch.drop_column("status_note")
        batch.drop_column("snoozed_until")
    op.drop_table("nudges")
