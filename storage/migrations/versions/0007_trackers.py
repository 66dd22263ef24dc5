"""Tickets in Jira and Linear: an action item's ticket, a channel's tracker, the work owed to trackers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("action_items") as batch:
        batch.add_column(sa.Column("ticket_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ticket_tracker", sa.String(16), nullable=True))
        batch.add_column(sa.Column("ticket_ref", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ticket_synced", sa.JSON(), nullable=True))
    op.create_table(
        "tracker_choices",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("tracker", sa.String(16), nullable=False),
        sa.Column("project", sa.String(64), nullable=True),
        sa.Column("chosen_by", sa.String(32), nullable=False),
        sa.Column("chosen_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "ticket_jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("action_items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("item_id", "kind", name="uq_ticket_jobs_item_kind"),
    )
    op.create_index("ix_ticket_jobs_due", "ticket_jobs", ["status", "not_before"])
    op.create_table(
        "tracker_cursors",
        sa.Column("tracker", sa.String(16), primary_key=True),
        sa.Column("pulled_until", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "tracker_notices",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("told", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tracker_notices")
    op.drop_table("tracker_cursors")
    op.drop_index("ix_ticket_jobs_due", table_name="ticket_jobs")
    op.drop_table("ticket_jobs")
    op.drop_table("tracker_choices")
    with op.batch_alter_table("action_items") as batch:
        batch.drop_column("ticket_synced")
        batch.drop_column("ticket_ref")
        batch.drop_column("ticket_tracker")
        batch.drop_column("ticket_key")
