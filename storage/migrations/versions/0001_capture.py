"""Incidents, captured messages, reactions, timeline entries and processed events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("commander_id", sa.String(32), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("card_ts", sa.String(32), nullable=True),
    )
    op.create_index(
        "uq_incidents_active_channel",
        "incidents",
        ["team_id", "channel_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_incidents_channel", "incidents", ["team_id", "channel_id"])

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("original_text", sa.Text(), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("file_names", sa.JSON(), nullable=False),
        sa.Column("posted_at", UTCDateTime(), nullable=False),
        sa.Column("edited_ts", sa.String(32), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("promoted_by", sa.String(32), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.UniqueConstraint("team_id", "channel_id", "ts", name="uq_messages_team_channel_ts"),
    )
    op.create_index("ix_messages_incident_id", "messages", ["incident_id"])

    op.create_table(
        "reactions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("emoji", sa.String(100), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("event_ts", sa.String(32), nullable=False),
        sa.UniqueConstraint("team_id", "channel_id", "message_ts", "user_id", "emoji", name="uq_reactions_identity"),
    )

    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team_id", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_index("ix_timeline_entries_incident_id", "timeline_entries", ["incident_id"])

    op.create_table(
        "processed_events",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_processed_events_received_at", "processed_events", ["received_at"])


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("timeline_entries")
    op.drop_table("reactions")
    op.drop_table("messages")
    op.drop_table("incidents")
