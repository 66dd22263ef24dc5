"""View values: what the Block Kit builders (bot/ui/) and the documents read.

Frozen plain values, built once from storage rows here and nowhere else: the services build
them and hand them to bot/ui/ and bot/postmortem_document.py, so nothing there (nor a template) sees
an ORM row or a session. The models are imported for type checking only: at run time this
module, and so bot/ui/, needs nothing from storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.models import ActionItem, Incident, Message, TimelineEntry

# Action-item statuses after which nothing more is asked of the owner.
CLOSED_STATUSES = ("done", "wont_do")


@dataclass(frozen=True, kw_only=True)
class IncidentView:
    """An incident as its card, its timeline, its messages and its document show it."""

    id: int
    team_id: str
    channel_id: str
    title: str
    severity: int
    status: str
    commander_id: str
    started_at: datetime
    resolved_at: datetime | None = None
    meeting_at: datetime | None = None
    meeting_requested: bool = False
    card_ts: str | None = None
    # The review meeting's deadline, for the message that names it (the commander's reminder).
    deadline: datetime | None = None
    # Where its action items get tickets ("Jira OPS"), for the card; None without a tracker.
    tracker: str | None = None

    @classmethod
    def from_row(
        cls, incident: Incident, *, deadline: datetime | None = None, tracker: str | None = None
    ) -> IncidentView:
        return cls(
            id=incident.id,
            team_id=incident.team_id,
            channel_id=incident.channel_id,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            commander_id=incident.commander_id,
            started_at=incident.started_at,
            resolved_at=incident.resolved_at,
            meeting_at=incident.meeting_at,
            meeting_requested=bool(incident.meeting_requested),
            card_ts=incident.card_ts,
            deadline=deadline,
            tracker=tracker,
        )


@dataclass(frozen=True, kw_only=True)
class ActionItemView:
    """An action item, with what its messages say about its incident."""

    id: int
    title: str
    owner_id: str
    due: date | None
    priority: str
    type: str
    status: str
    ticket_url: str | None = None
    ticket_key: str | None = None  # the tracker's key ("OPS-12") when the bot made or adopted it
    # The won't-do reason, or the note left with a snooze or "Not mine".
    status_note: str | None = None
    incident_title: str = ""
    incident_channel: str = ""
    commander_id: str = ""

    @property
    def closed(self) -> bool:
        """Done or won't do: its messages show the final state, without buttons."""
        return self.status in CLOSED_STATUSES

    @classmethod
    def from_row(cls, item: ActionItem, incident: Incident) -> ActionItemView:
        return cls(
            id=item.id,
            title=item.title,
            owner_id=item.owner_id,
            due=item.due,
            priority=item.priority,
            type=item.type,
            status=item.status,
            ticket_url=item.ticket_url,
            ticket_key=item.ticket_key,
            status_note=item.status_note,
            incident_title=incident.title,
            incident_channel=incident.channel_id,
            commander_id=incident.commander_id,
        )


@dataclass(frozen=True)
class TimelineItem:
    """One line of the timeline, whatever its source."""

    occurred_at: datetime
    kind: str  # "message", "note" or "lifecycle"
    user_id: str | None
    text: str | None
    ts: str | None = None  # Slack's ts, for messages
    thread_ts: str | None = None
    file_names: tuple[str, ...] = ()
    edited: bool = False
    missing: bool = False  # promoted, but Slack could not give us its text (yet)

    @classmethod
    def from_message(cls, message: Message) -> TimelineItem:
        return cls(
            occurred_at=message.posted_at,
            kind="message",
            user_id=message.user_id,
            text=message.text,
            ts=message.ts,
            thread_ts=message.thread_ts,
            file_names=tuple(message.file_names or ()),
            edited=message.edited_ts is not None,
            missing=message.source == "missing",
        )

    @classmethod
    def from_entry(cls, entry: TimelineEntry) -> TimelineItem:
        return cls(occurred_at=entry.occurred_at, kind=entry.kind, user_id=entry.user_id, text=entry.text)


@dataclass(frozen=True)
class TeamStats:
    """`/postmortem stats`: a team's incidents and their follow-through over `days`."""

    days: int
    incidents: int
    by_severity: dict[int, int]
    by_cause: dict[str, int]  # cause category key ("unknown" until a post-mortem names one)
    resolved: int
    median_time_to_resolve: timedelta | None
    postmortems_submitted: int
    postmortems_published: int
    median_time_to_postmortem: timedelta | None  # resolution to first submission
    items: int
    items_done: int
    items_done_on_time: int  # done, and last changed no later than its due date
    items_open_overdue: int
    items_wont_do: int
    # What the period is called when it is not "the last `days` days": "2026-Q1".
    period: str = ""

    @property
    def items_done_late(self) -> int:
        return self.items_done - self.items_done_on_time

    @property
    def on_time_rate(self) -> float | None:
        """Of the items done, the share done by their due date; None when none is done."""
        return self.items_done_on_time / self.items_done if self.items_done else None


# --- the overview: App Home, the quarterly review, repeats ---------------------------------------


@dataclass(frozen=True)
class OwedIncident:
    """An incident its commander still owes something: what, and the button that does it."""

    incident: IncidentView
    postmortem_status: str | None  # None until a post-mortem is started
    owes: str  # "resolution", "post-mortem", "review meeting", "publication"


@dataclass(frozen=True)
class HomeView:
    """A person's App Home: their open items (one page), the incidents they owe, the team."""

    user_id: str
    today: date
    items: tuple[ActionItemView, ...]  # this page's
    items_total: int
    page: int
    pages: int
    owed: tuple[OwedIncident, ...]
    owed_total: int
    team_open: int
    team_overdue: int
    quarter: TeamStats


@dataclass(frozen=True)
class RepeatIncident:
    """An earlier incident that looks like this one, with what is still open of it."""

    incident: IncidentView
    why: str  # "same words: checkout, payment"
    open_items: tuple[ActionItemView, ...]


@dataclass(frozen=True)
class RecurringGroup:
    """Three or more incidents of a quarter with one cause category or service word."""

    reason: str  # "cause: Deployment" or "“checkout” in the title"
    incidents: tuple[IncidentView, ...]


@dataclass(frozen=True)
class MonthCount:
    """One month of a quarter: incidents declared by cause, and items done (on time or not)."""

    month: date  # its first day
    by_cause: dict[str, int]
    done: int
    done_on_time: int


@dataclass(frozen=True)
class QuarterReview:
    """The quarterly review: the quarter's stats against the previous quarter's, and what to look at."""

    stats: TeamStats  # period = "2026-Q1"
    previous: TeamStats
    so_far: bool  # the quarter is not over yet
    as_of: date
    recurring: tuple[RecurringGroup, ...]
    graveyard: tuple[ActionItemView, ...]  # open past due, every quarter's, oldest first
    graveyard_total: int
    unpublished: tuple[IncidentView, ...]
    months: tuple[MonthCount, ...]
