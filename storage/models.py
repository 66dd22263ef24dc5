"""SQLAlchemy 2 models. Storage knows nothing of Slack's API; it only keeps Slack's identifiers.

Invariants live in the schema: a message is unique by (team, channel, ts), a reaction by
(team, channel, message ts, user, emoji), an event by (team, event_id), and a channel has at
most one active incident. Redelivered events therefore cannot create duplicates whatever
code path they take.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC instants; always gives back timezone-aware UTC datetimes.

    SQLite has no timezone type, so values are stored naive-in-UTC and re-labelled on read;
    PostgreSQL gets `timestamptz`. Naive datetimes are refused: they are always a bug here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


# Incident statuses. Messages are captured while an incident is in a capturing status.
ACTIVE = "active"
RESOLVED = "resolved"
CAPTURING_STATUSES = (ACTIVE, RESOLVED)


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        # At most one active incident per channel, even when two `start`s race.
        Index(
            "uq_incidents_active_channel",
            "team_id",
            "channel_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_incidents_channel", "team_id", "channel_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    severity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    commander_id: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    card_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    meeting_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    meeting_attendees: Mapped[list[str]] = mapped_column(JSON, default=list)
    # SEV3-4 get a review meeting only when someone asks for one.
    meeting_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The newest top-level message ts of the channel's last full read-back from Slack: a
    # message event older than that, for a message the read did not list, is of a message
    # deleted since (a late redelivery must not bring it back).
    history_read_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)

    entries: Mapped[list[TimelineEntry]] = relationship(back_populates="incident")


class Message(Base):
    """A human message seen in an incident channel (thread replies included).

    `deleted` rows are tombstones: a delete that overtakes its message, or a redelivered
    message event after a delete, must not bring the message back.
    """

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "ts", name="uq_messages_team_channel_ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The text as first posted, kept when an edit replaces `text`.
    original_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    thread_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    file_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # ts of the latest applied edit; an older edit arriving late is ignored.
    edited_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when someone used the "Add to timeline" shortcut on this message.
    promoted_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # When reconciliation last read this message's timeline reactions whole from Slack (a
    # Slack ts). A reaction event older than that is stale: the read already saw its outcome.
    reactions_read_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # "event" (seen live), "fetched" (asked of Slack), "sync" (repaired by reconciliation),
    # "missing" (Slack could not give it).
    source: Mapped[str] = mapped_column(String(16), default="event")


class Reaction(Base):
    """The latest known state of one user's emoji on one message.

    Slack dispatches events concurrently, so a quick add-then-remove can be processed in the
    other order; the row keeps the event_ts of the change it reflects and older changes lose.
    """

    __tablename__ = "reactions"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "message_ts", "user_id", "emoji", name="uq_reactions_identity"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    emoji: Mapped[str] = mapped_column(String(100))
    present: Mapped[bool] = mapped_column(Boolean)
    event_ts: Mapped[str] = mapped_column(String(32))


# Kinds of timeline entry that are not Slack messages.
LIFECYCLE = "lifecycle"
NOTE = "note"


class TimelineEntry(Base):
    """A lifecycle entry written by the bot, or a manual note."""

    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    text: Mapped[str] = mapped_column(Text)

    incident: Mapped[Incident] = relationship(back_populates="entries")


class ProcessedEvent(Base):
    """Event ids already handled: Slack redelivers events it believes were missed."""

    __tablename__ = "processed_events"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class InboxEvent(Base):
    """An Events API delivery, committed before it is acknowledged and applied after.

    Slack never resends an event it got a 200 for, so the 200 waits for this row's commit
    (many deliveries share one commit). Applying it to the timeline comes after, from here,
    so a crash between the two loses nothing. A delivery whose application keeps failing is
    kept with its error (`failed`), never dropped.
    """

    __tablename__ = "event_inbox"
    __table_args__ = (UniqueConstraint("team_id", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)  # the request body as Slack signed it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


# Post-mortem statuses.
DRAFT = "draft"
IN_REVIEW = "in_review"
PUBLISHED = "published"


class Postmortem(Base):
    """The post-mortem of one incident: its working draft and where it was shared.

    `draft` is the latest content anyone saved or submitted (latest wins); every submission
    is also kept whole as a PostmortemRevision. `view_revision` counts views.update calls so
    that the modal's block ids change and Slack re-renders inputs from the stored draft.
    """

    __tablename__ = "postmortems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    view_revision: Mapped[int] = mapped_column(Integer, default=0)
    # Stored action items someone removed in the modal; deleted when the next submission lands.
    removed_item_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Who submitted and then met quality warnings; "Submit anyway" finishes their submission.
    pending_submitter: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    summary_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    file_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


class PostmortemRevision(Base):
    __tablename__ = "postmortem_revisions"
    __table_args__ = (UniqueConstraint("postmortem_id", "number", name="uq_postmortem_revisions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Action-item statuses.
OPEN = "open"


class ActionItem(Base):
    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    due: Mapped[date] = mapped_column(Date)
    priority: Mapped[str] = mapped_column(String(4), default="P2")
    type: Mapped[str] = mapped_column(String(16), default="prevent")
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    ticket_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The ticket in a tracker (bot/trackers/): its key ("OPS-12", "ENG-7"), which tracker
    # ("jira", "linear"), the tracker's own id, and the state both sides last agreed on
    # ({"status", "due", "assignee"}), so a later change on either side is seen as one.
    ticket_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ticket_tracker: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ticket_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ticket_synced: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Why it was snoozed or will not be done, in the owner's words.
    status_note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The latest DM about it, updated in place when the owner answers.
    dm_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    dm_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)


# Nudge statuses: pending -> claimed -> sent; or cancelled (the subject changed), failed (undeliverable).
PENDING = "pending"
CLAIMED = "claimed"
SENT = "sent"
CANCELLED = "cancelled"
FAILED = "failed"


class Nudge(Base):
    """One message the bot owes someone at a time. The database is the schedule.

    Unique by (kind, subject, slot): two sweepers planning the same reminder make one row.
    A sweep claims due rows atomically, sends, then marks them sent; a claim left behind by
    a crash is recovered by looking for the message itself in Slack (its metadata carries
    the nudge's key), so a message is never sent twice nor lost.
    """

    __tablename__ = "nudges"
    __table_args__ = (
        UniqueConstraint("kind", "subject", "slot", name="uq_nudges_key"),
        Index("ix_nudges_due", "status", "not_before"),
        # Replanning a subject cancels its pending rows: found by subject, not by scanning all pending.
        Index("ix_nudges_subject", "subject", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))  # "action_item:12", "incident:3"
    slot: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(32))  # a user id (DM) or a channel id
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.subject}/{self.slot}"


class KnownPerson(Base):
    """What documents need about a person, as Slack last said (users.info, user_change).

    Kept so a document names people when Slack cannot (unreachable, or the person is gone
    from the workspace). Only people the bot has met are kept: ids are Slack's, one
    workspace per bot. `slack_updated` is Slack's own `updated` stamp of the profile, so
    an older answer arriving late cannot overwrite a newer one.
    """

    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    real_name: Mapped[str] = mapped_column(String(255), default="")
    handle: Mapped[str] = mapped_column(String(255), default="")  # Slack's `name`
    tz: Mapped[str] = mapped_column(String(64), default="UTC")
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    slack_updated: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    @property
    def label(self) -> str:
        """How a document names them: display name, else full name, else handle."""
        return self.display_name or self.real_name or self.handle or self.user_id


class KnownChannel(Base):
    """A channel's name as Slack last said (conversations.info, channel_rename, group_rename)."""

    __tablename__ = "channels"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


class TrackerChoice(Base):
    """The tracker a channel's action items go to (`/postmortem tracker`): "jira" or "linear"
    with a project or team key, or "none"."""

    __tablename__ = "tracker_choices"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tracker: Mapped[str] = mapped_column(String(16))
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    chosen_by: Mapped[str] = mapped_column(String(32))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Ticket job kinds: make the item's ticket exist; make the ticket match the item.
TICKET_CREATE = "create"
TICKET_PUSH = "push"


class TicketJob(Base):
    """Work owed to a tracker about one action item, done once like a nudge.

    Unique by (item, kind): asking again while one is pending changes nothing but its
    `generation`, so a claim taken before the new ask is not marked done over it. A sweep
    claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL); a failure puts the row back
    with `not_before` later (backoff, or the tracker's Retry-After).
    """

    __tablename__ = "ticket_jobs"
    __table_args__ = (
        UniqueConstraint("item_id", "kind", name="uq_ticket_jobs_item_kind"),
        Index("ix_ticket_jobs_due", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrackerCursor(Base):
    """Up to when a tracker's changes have been pulled (the sweep's pull goes on from there)."""

    __tablename__ = "tracker_cursors"

    tracker: Mapped[str] = mapped_column(String(16), primary_key=True)
    pulled_until: Mapped[datetime] = mapped_column(UTCDateTime())


class TrackerNotice(Base):
    """A problem someone was told about once (a refused token, an owner with no account)."""

    __tablename__ = "tracker_notices"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    told: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
