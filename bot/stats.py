"""`/postmortem stats`: how a team's incidents and their follow-through went over a period.

Pure arithmetic over stored rows; the numbers people ask of a post-mortem process: counts by
severity and cause, time to resolve, time from resolution to a written post-mortem, and
whether action items were closed by their due date. The quarterly review (bot/review.py) and
App Home's team block take their numbers from here too: one computation, one set of numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bot.clock import Clock
from bot.views import TeamStats
from storage.db import SessionFactory
from storage.models import ActionItem, Incident, Postmortem
from storage.stats import incidents_since

DEFAULT_DAYS = 90
MAX_DAYS = 3660


def _median(durations: list[timedelta]) -> timedelta | None:
    """statistics.median, typed for durations (it averages the middle two of an even count)."""
    if not durations:
        return None
    ordered = sorted(durations)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter in UTC: "2026-Q1" is January to March 2026."""

    year: int
    number: int  # 1-4

    @classmethod
    def of(cls, at: datetime | date) -> Quarter:
        return cls(at.year, (at.month - 1) // 3 + 1)

    @classmethod
    def parse(cls, text: str) -> Quarter | None:
        """ "2026-Q1" (any case, "2026Q1" too); None for anything else."""
        match = re.fullmatch(r"(\d{4})-?[qQ]([1-4])", text.strip())
        return cls(int(match.group(1)), int(match.group(2))) if match else None

    @property
    def label(self) -> str:
        return f"{self.year}-Q{self.number}"

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The next quarter's start (exclusive)."""
        return self.next().start

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def previous(self) -> Quarter:
        return Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)

    def months(self) -> list[date]:
        """The first day of each of its three months."""
        return [date(self.year, 3 * self.number - 2 + i, 1) for i in range(3)]


def cause_of(postmortem: Postmortem | None) -> str:
    """An incident's cause category key, "unknown" until its post-mortem names one."""
    category = (postmortem.draft or {}).get("cause_category") if postmortem is not None else None
    return category if isinstance(category, str) and category else "unknown"


def done_on_time(item: ActionItem) -> bool:
    """Done, and last changed no later than its due date."""
    return item.status == "done" and item.updated_at.date() <= item.due


def team_stats(
    incidents: list[Incident],
    postmortems: list[Postmortem],
    items: list[ActionItem],
    days: int,
    today: date,
    period: str = "",
) -> TeamStats:
    by_incident = {p.incident_id: p for p in postmortems}
    to_resolve = [i.resolved_at - i.started_at for i in incidents if i.resolved_at is not None]
    to_postmortem = []
    for incident in incidents:
        submitted = by_incident[incident.id].submitted_at if incident.id in by_incident else None
        if incident.resolved_at is not None and submitted is not None:
            to_postmortem.append(submitted - incident.resolved_at)
    causes = Counter(cause_of(by_incident.get(incident.id)) for incident in incidents)
    done = [a for a in items if a.status == "done"]
    return TeamStats(
        days=days,
        incidents=len(incidents),
        by_severity=dict(sorted(Counter(i.severity for i in incidents).items())),
        by_cause=dict(causes.most_common()),
        resolved=len(to_resolve),
        median_time_to_resolve=_median(to_resolve),
        postmortems_submitted=sum(1 for p in postmortems if p.submitted_at is not None),
        postmortems_published=sum(1 for p in postmortems if p.published_at is not None),
        median_time_to_postmortem=_median(to_postmortem),
        items=len(items),
        items_done=len(done),
        items_done_on_time=sum(1 for a in done if done_on_time(a)),
        items_open_overdue=sum(1 for a in items if a.status in ("open", "in_progress") and a.due < today),
        items_wont_do=sum(1 for a in items if a.status == "wont_do"),
        period=period,
    )


class StatsService:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def for_team(self, team_id: str, days: int = DEFAULT_DAYS) -> TeamStats:
        """Incidents declared in the last `days` days, with their post-mortems and items."""
        now = self.clock.now()
        since: datetime = now - timedelta(days=days)
        async with self.sessions() as session:
            incidents, postmortems, items = await incidents_since(session, team_id, since)
        return team_stats(incidents, postmortems, items, days, now.date())

    async def for_quarter(self, team_id: str, quarter: Quarter) -> TeamStats:
        """Incidents declared in `quarter`, as of now (what is overdue is overdue today)."""
        async with self.sessions() as session:
            incidents, postmortems, items = await incidents_since(session, team_id, quarter.start, quarter.end)
        days = (quarter.end - quarter.start).days
        return team_stats(incidents, postmortems, items, days, self.clock.now().date(), period=quarter.label)
