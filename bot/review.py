"""The quarterly review: which causes dominate, what recurs, and whether follow-through happened.

`/postmortem review [YYYY-Qn]` answers privately (default: the quarter so far). At the start of
each quarter the sweep posts the past quarter's review, with its chart, to
POSTMORTEM_REVIEW_CHANNEL: the post is a nudge row (kind "quarterly_review", subject
"team:<id>", slot "2026-Q1"), so it is claimed, sent and recovered exactly once across
replicas and restarts like every other nudge. The counts are `bot.stats.team_stats`'s, the
same computation as `/postmortem stats`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.nudges import NudgeService
from bot.postmortem_content import CAUSE_CATEGORIES
from bot.repeats import words
from bot.review_chart import review_chart
from bot.slack import SLACK_FAILURES, error_code
from bot.stats import Quarter, StatsService, cause_of, done_on_time, team_stats
from bot.ui.review import review_message
from bot.views import ActionItemView, IncidentView, MonthCount, QuarterReview, RecurringGroup
from storage.db import SessionFactory
from storage.models import ActionItem, Incident, Nudge, Postmortem
from storage.nudges import put_nudge
from storage.stats import incidents_since, open_items_past_due, team_ids

log = logging.getLogger("postmortem_bot.review")

REVIEW_KIND = "quarterly_review"
# The past quarter's review goes out at 09:00 UTC on the quarter's first day; a bot that was
# down then still posts it within this many days, never a stale review later than that.
POST_HOUR = 9
POST_WITHIN = timedelta(days=7)
RECURS_AT = 3  # "third breach this quarter"
MAX_GROUPS = 5


def team_subject(team_id: str) -> str:
    return f"team:{team_id}"


def recurring_groups(incidents: list[Incident], postmortems: dict[int, Postmortem]) -> list[RecurringGroup]:
    """Incidents sharing a cause category, or a word of their titles (the service), RECURS_AT times or more."""
    groups: list[RecurringGroup] = []
    seen: set[frozenset[int]] = set()
    by_cause: dict[str, list[Incident]] = defaultdict(list)
    by_word: dict[str, list[Incident]] = defaultdict(list)
    for incident in incidents:
        cause = cause_of(postmortems.get(incident.id))
        if cause != "unknown":
            by_cause[cause].append(incident)
        for word in words(incident.title):
            by_word[word].append(incident)
    candidates = [(f"cause: {CAUSE_CATEGORIES.get(c, c)}", found) for c, found in by_cause.items()]
    candidates += [(f"“{w}” in the title", found) for w, found in sorted(by_word.items())]
    for reason, found in sorted(candidates, key=lambda c: -len(c[1])):
        ids = frozenset(i.id for i in found)
        if len(found) < RECURS_AT or ids in seen:
            continue
        seen.add(ids)
        groups.append(RecurringGroup(reason=reason, incidents=tuple(IncidentView.from_row(i) for i in found)))
    return groups[:MAX_GROUPS]


def month_counts(
    quarter: Quarter, incidents: list[Incident], postmortems: dict[int, Postmortem], items: list[ActionItem]
) -> list[MonthCount]:
    """Each month of `quarter`: its incidents by cause, and the quarter's items done that month."""
    months = []
    for first in quarter.months():
        causes = Counter(
            cause_of(postmortems.get(i.id))
            for i in incidents
            if (i.started_at.year, i.started_at.month) == (first.year, first.month)
        )
        done = [
            a
            for a in items
            if a.status == "done" and (a.updated_at.year, a.updated_at.month) == (first.year, first.month)
        ]
        months.append(
            MonthCount(month=first, by_cause=dict(causes), done=len(done), done_on_time=sum(map(done_on_time, done)))
        )
    return months


class ReviewService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        stats: StatsService,
        channel: str | None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.stats = stats
        self.channel = channel

    def hook_into(self, nudges: NudgeService) -> None:
        """The sweep plans and sends the quarterly post as one of its kinds of nudge."""
        nudges.add_kind(REVIEW_KIND, compose=self.compose_post, plan=self.plan_post)

    async def review(self, team_id: str, quarter: Quarter) -> QuarterReview:
        now = self.clock.now()
        today = now.date()
        async with self.sessions() as session:
            incidents, postmortems, items = await incidents_since(session, team_id, quarter.start, quarter.end)
            previous_rows = await incidents_since(session, team_id, quarter.previous().start, quarter.start)
            graveyard = await open_items_past_due(session, team_id, today)
        days = (quarter.end - quarter.start).days
        stats = team_stats(incidents, postmortems, items, days, today, period=quarter.label)
        previous = team_stats(*previous_rows, days, today, period=quarter.previous().label)
        by_incident = {p.incident_id: p for p in postmortems}
        unpublished = [
            IncidentView.from_row(i)
            for i in incidents
            if i.resolved_at is not None and (by_incident.get(i.id) is None or by_incident[i.id].published_at is None)
        ]
        return QuarterReview(
            stats=stats,
            previous=previous,
            so_far=now < quarter.end,
            as_of=today,
            recurring=tuple(recurring_groups(incidents, by_incident)),
            graveyard=tuple(ActionItemView.from_row(a, i) for a, i in graveyard),
            graveyard_total=len(graveyard),
            unpublished=tuple(unpublished),
            months=tuple(month_counts(quarter, incidents, by_incident, items)),
        )

    # --- the post at the start of each quarter ---------------------------------------------------

    async def plan_post(self, now: datetime) -> None:
        """In a quarter's first days, the past quarter's review of every team, once (the row's key)."""
        if not self.channel:
            return
        current = Quarter.of(now)
        post_at = current.start + timedelta(hours=POST_HOUR)
        if not (current.start <= now < current.start + POST_WITHIN):
            return
        async with self.sessions.begin() as session:
            for team_id in await team_ids(session):
                await put_nudge(
                    session,
                    team_id=team_id,
                    kind=REVIEW_KIND,
                    subject=team_subject(team_id),
                    slot=current.previous().label,
                    recipient=self.channel,
                    not_before=post_at,
                    now=now,
                )

    async def compose_post(self, nudge: Nudge, now: datetime) -> dict[str, Any] | None:
        """The review of the nudge's quarter, its chart uploaded first and shown in the post."""
        quarter = Quarter.parse(nudge.slot)
        if quarter is None:
            return None
        review = await self.review(nudge.team_id, quarter)
        png = await asyncio.to_thread(review_chart, review)
        await self._join(nudge.recipient)
        # Uploaded unshared, then shown by the post's image block: one message carries the review,
        # its chart and the nudge's key, so the post is exactly-once like any nudge.
        uploaded = await self.client.files_upload_v2(
            filename=f"postmortem-review-{quarter.label}.png",
            content=png,
            title=f"Incidents by cause, {quarter.label}",
        )
        files = uploaded.get("files") or [uploaded.get("file") or {}]
        return review_message(review, chart_file_id=str(files[0].get("id") or "") or None)

    async def _join(self, channel: str) -> None:
        if not channel.startswith("C"):
            return
        try:
            await self.client.conversations_join(channel=channel)
        except SLACK_FAILURES as exc:  # a private channel needs an /invite: the post says why
            if not isinstance(exc, SlackApiError) or error_code(exc) != "method_not_supported_for_channel_type":
                log.warning("could not join the review channel %s: %s", channel, error_code(exc))
