"""App Home: the one place to see what is owed. Built for the person who opens it, and
published again whenever something of theirs changes (an item assigned, answered from a DM or
from Home, an incident of theirs moving on); trackers call `refresh` when a ticket closes.

Refreshing is best effort: a view Slack refuses is logged, never a failed answer. The page a
person was looking at is remembered by the process that published it (a refresh served by
another replica shows the first page).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.nudge_calendar import local_date, meeting_deadline
from bot.people import PeopleDirectory
from bot.slack import SLACK_FAILURES, error_code
from bot.stats import Quarter, StatsService
from bot.ui.home import ITEMS_PER_PAGE, home_view
from bot.views import ActionItemView, HomeView, IncidentView, OwedIncident
from storage.db import SessionFactory
from storage.home import incidents_owing, open_items_of
from storage.models import Incident, Postmortem
from storage.stats import open_item_counts

log = logging.getLogger("postmortem_bot.home")

MAX_REMEMBERED_PAGES = 10_000


def what_is_owed(incident: Incident, postmortem: Postmortem | None) -> str | None:
    """What an incident still owes its commander, in the order it is owed; None when nothing."""
    status = postmortem.status if postmortem is not None else None
    if incident.status == "active":
        return "resolution"
    if status in (None, "draft"):
        return "post-mortem"
    needs_meeting = (
        incident.meeting_at is None
        and incident.resolved_at is not None
        and meeting_deadline(incident.resolved_at, incident.severity, requested=incident.meeting_requested) is not None
    )
    if needs_meeting:
        return "review meeting"
    if status == "in_review":
        return "publication"
    return None


class HomeService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        stats: StatsService,
        people: PeopleDirectory,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.stats = stats
        self.people = people
        self._pages: dict[tuple[str, str], int] = {}

    async def view(self, team_id: str, user_id: str, page: int = 0) -> HomeView:
        now = self.clock.now()
        today: date = local_date(now, (await self.people.get(user_id)).tz)
        async with self.sessions() as session:
            items = await open_items_of(session, team_id, user_id)
            owing = await incidents_owing(session, team_id, user_id)
            team_open, team_overdue = await open_item_counts(session, team_id, today)
        owed = [
            OwedIncident(IncidentView.from_row(i), pm.status if pm is not None else None, owes)
            for i, pm in owing
            if (owes := what_is_owed(i, pm)) is not None
        ]
        pages = max(1, -(-len(items) // ITEMS_PER_PAGE))
        page = min(max(page, 0), pages - 1)
        shown = items[page * ITEMS_PER_PAGE : (page + 1) * ITEMS_PER_PAGE]
        return HomeView(
            user_id=user_id,
            today=today,
            items=tuple(ActionItemView.from_row(a, i) for a, i in shown),
            items_total=len(items),
            page=page,
            pages=pages,
            owed=tuple(owed),
            owed_total=len(owed),
            team_open=team_open,
            team_overdue=team_overdue,
            quarter=await self.stats.for_quarter(team_id, Quarter.of(now)),
        )

    async def publish(self, team_id: str, user_id: str, page: int | None = None) -> bool:
        """Publish `user_id`'s Home (at `page`, else the page they last saw here); False if Slack refused."""
        key = (team_id, user_id)
        home = await self.view(team_id, user_id, self._pages.get(key, 0) if page is None else page)
        try:
            await self.client.views_publish(user_id=user_id, view=home_view(home))
        except SLACK_FAILURES as exc:
            log.warning("could not publish App Home for %s: %s", user_id, error_code(exc))
            return False
        if len(self._pages) >= MAX_REMEMBERED_PAGES:
            self._pages.clear()
        self._pages[key] = home.page
        return True

    async def refresh(self, team_id: str, user_ids: Iterable[str]) -> None:
        """Publish again the Home of each person something changed for; never raises."""
        for user_id in dict.fromkeys(u for u in user_ids if u):
            try:
                await self.publish(team_id, user_id)
            except Exception:  # a refresh must never undo or fail the change that caused it
                log.exception("App Home refresh for %s failed", user_id)
