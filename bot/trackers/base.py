"""The tracker interface: what the service asks of Jira, Linear or any other tracker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

# A ticket's status, as both sides compare it.
OPEN, DONE, WONT_DO = "open", "done", "wont_do"


@dataclass(frozen=True)
class TicketSpec:
    """What a new ticket says. `marker` identifies the action item in the tracker, so an
    attempt whose outcome was lost (a 5xx after the create, a timeout, a crash) is found
    before another is made."""

    marker: str
    project: str  # Jira project key, Linear team key
    title: str
    summary_url: str | None  # the post-mortem's Slack permalink
    incident: str
    root_cause: str
    due: date | None
    priority: str  # P1..P4
    assignee: str | None  # the tracker's account id


@dataclass(frozen=True)
class TicketState:
    """A ticket as the tracker says it is now."""

    ref: str  # the tracker's own id
    key: str  # what people read: OPS-12, ENG-7
    url: str
    status: str  # OPEN, DONE or WONT_DO
    due: date | None
    assignee: str | None  # account id
    assignee_email: str | None
    updated_at: datetime


class TrackerError(Exception):
    """A tracker call failed; `str()` says what, in words a person can act on."""

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrackerUnavailable(TrackerError):
    """Down, slow, rate limited or failing (5xx, timeout, 429): try again later. The call
    may have had its effect: a create is looked for by its marker before it is tried again."""

    retryable = True


class TrackerRefused(TrackerError):
    """The tracker refuses what the bot is set up to do (a wrong token, an unknown project
    or team, no permission): a person must fix the configuration. Retried rarely."""


class TicketGone(TrackerError):
    """The ticket does not exist (any more): deleted in the tracker."""


class Tracker(Protocol):
    """One tracker. Implementations talk HTTP and translate; they keep no rules."""

    name: str

    async def create(self, spec: TicketSpec) -> TicketState: ...

    async def find_by_marker(self, marker: str, project: str) -> TicketState | None: ...

    async def get(self, ref: str) -> TicketState: ...

    async def set_status(self, ref: str, project: str, status: str) -> None: ...

    async def update(self, ref: str, *, due: date | None, assignee: str | None) -> None: ...

    def changed_since(self, since: datetime, now: datetime) -> AsyncIterator[TicketState]: ...

    async def user_by_email(self, email: str) -> str | None: ...

    def key_of_url(self, url: str) -> str | None: ...

    async def close(self) -> None: ...


PRIORITY_NAMES = {"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low"}
LINEAR_PRIORITIES = {"P1": 1, "P2": 2, "P3": 3, "P4": 4}


def marker_of(team_id: str, item_id: int) -> str:
    """The label (Jira) or description line (Linear) that names an action item."""
    return f"pm-item-{team_id.lower()}-{item_id}"
