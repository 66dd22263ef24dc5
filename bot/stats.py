"""`/postmortem stats`: how a team's incidents and their follow-through went over a period.

Pure arithmetic over stored rows; the numbers people ask of a post-mortem process: counts by
severity and cause, time to resolve, time from resolution to a written post-mortem, and
whether action items were closed by their due date.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

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


def team_stats(
    incidents: list[Incident], postmortems: list[Postmortem], items: list[ActionItem], days: int, today: date
) -> TeamStats:
    by_incident = {p.incident_id: p for p in postmortems}
    to_resolve = [i.resolved_at - i.started_at for i in incidents if i.resolved_at is not None]
    to_postmortem = []
    for incident in incidents:
        submitted = by_incident[incident.id].submitted_at if incident.id in by_incident else None
        if incident.resolved_at is not None and submitted is not None:
            to_postmortem.append(submitted - incident.resolved_at)
    causes: Counter[str] = Counter()
    for incident in incidents:
        postmortem = by_incident.get(incident.id)
        category = (postmortem.draft or {}).get("cause_category") if postmortem is not None else None
        causes[category if isinstance(category, str) and category else "unknown"] += 1
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
        items_done_on_time=sum(1 for a in done if a.updated_at.date() <= a.due),
        items_open_overdue=sum(1 for a in items if a.status in ("open", "in_progress") and a.due < today),
        items_wont_do=sum(1 for a in items if a.status == "wont_do"),
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
