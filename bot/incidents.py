"""Incidents: declaring one in a channel, and the card that stands for it there.

IncidentService is the card's one owner: it posts it when the incident is declared and
redraws it whenever another service (post-mortems, meetings) changes what it shows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError

from bot.access import ChannelAccess
from bot.clock import Clock
from bot.home import HomeService
from bot.people import PeopleDirectory
from bot.repeats import RepeatFinder
from bot.slack import error_code
from bot.ui.card import incident_card
from bot.ui.text import severity_label
from bot.views import IncidentView, RepeatIncident
from storage.db import SessionFactory
from storage.incidents import (
    active_incident,
    create_incident,
    delete_incident,
    get_incident,
    latest_incident,
    set_card_ts,
    team_incident,
)
from storage.models import LIFECYCLE, Incident
from storage.postmortems import postmortem_status
from storage.timeline import add_timeline_entry

log = logging.getLogger("postmortem_bot.incidents")

MAX_TITLE = 200

# For a command that needs the channel's incident when there is none (post-mortems, action items).
NO_INCIDENT_HERE = "There is no incident in this channel. Start one with `/postmortem start <title>`."


class StartFailed(Exception):
    """The incident could not be declared; the message says what the person can do."""


@dataclass(frozen=True)
class StartOutcome:
    incident: IncidentView
    created: bool
    warning: str | None = None  # something that went wrong but did not stop the start


class IncidentService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        timeline_emojis: tuple[str, ...],
        access: ChannelAccess,
        people: PeopleDirectory,
        home: HomeService | None = None,
        repeats: RepeatFinder | None = None,
    ) -> None:
        self.home = home
        self.repeats = repeats
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.timeline_emojis = timeline_emojis
        self.access = access
        self.people = people
        # "Jira OPS" for a channel, shown on the card (set by Services.build: the tickets' owner).
        self.tracker_label: Callable[[str, str], Awaitable[str | None]] | None = None

    async def start(self, *, team_id: str, channel_id: str, user_id: str, title: str, severity: int) -> StartOutcome:
        """Declare an incident in `channel_id`, or return the one already active there.

        The database decides races (one active incident per channel, by a unique index), so
        the row is written first; if the card cannot be posted the row is removed again and
        the person is told why, leaving nothing half-made behind. Only a member may declare
        one in a private channel (AccessDenied otherwise).
        """
        await self.access.require_member(channel_id, user_id)
        now = self.clock.now()
        try:
            async with self.sessions.begin() as session:
                existing = await active_incident(session, team_id, channel_id)
                if existing is not None:
                    return StartOutcome(incident=IncidentView.from_row(existing), created=False)
                incident = await create_incident(
                    session,
                    team_id=team_id,
                    channel_id=channel_id,
                    title=title[:MAX_TITLE],
                    severity=severity,
                    commander_id=user_id,
                    started_at=now,
                )
                await add_timeline_entry(
                    session,
                    team_id=team_id,
                    incident_id=incident.id,
                    kind=LIFECYCLE,
                    occurred_at=now,
                    user_id=user_id,
                    text=f"Incident declared: {incident.title} ({severity_label(severity)})",
                )
        except IntegrityError:
            # Another `start` in the same channel won the race.
            async with self.sessions() as session:
                existing = await active_incident(session, team_id, channel_id)
            if existing is None:
                raise
            return StartOutcome(incident=IncidentView.from_row(existing), created=False)

        try:
            card_ts = await self._post_card(incident)
        except StartFailed:
            await self._forget(incident)
            raise
        warning = await self._pin(channel_id, card_ts)
        await self.people.learn([user_id])  # the commander, named in every document
        async with self.sessions.begin() as session:
            await set_card_ts(session, incident.id, card_ts)
        incident.card_ts = card_ts
        return StartOutcome(incident=IncidentView.from_row(incident), created=True, warning=warning)

    async def refresh_channel_card(self, team_id: str, channel_id: str) -> None:
        """Redraw the card of the channel's latest incident, if it has one."""
        async with self.sessions() as session:
            incident = await latest_incident(session, channel_id, team_id)
        if incident is not None:
            await self.refresh_card(incident)

    async def channel_of(self, team_id: str, incident_id: int) -> str | None:
        """The channel of workspace `team_id`'s incident `incident_id` (App Home's buttons name
        the incident, not the channel); None when there is no such incident."""
        async with self.sessions() as session:
            incident = await team_incident(session, team_id, incident_id)
        return incident.channel_id if incident is not None else None

    async def refresh_card(self, incident: Incident) -> None:
        """Redraw the pinned card; a card Slack lost is logged, never fatal."""
        if not incident.card_ts:
            return
        async with self.sessions() as session:
            status = await postmortem_status(session, incident.id)
            fresh = await get_incident(session, incident.id)
        tracker = await self.tracker_label(incident.team_id, incident.channel_id) if self.tracker_label else None
        view = IncidentView.from_row(fresh or incident, tracker=tracker)
        try:
            await self.client.chat_update(
                channel=incident.channel_id,
                ts=incident.card_ts,
                **incident_card(view, self.timeline_emojis, status, repeats=await self._repeats(view)),
            )
        except SlackApiError as exc:
            log.warning("could not update the card of incident %s: %s", incident.id, error_code(exc))
        if self.home is not None:  # what the commander owes may have changed
            await self.home.refresh(view.team_id, [view.commander_id])

    async def _repeats(self, incident: IncidentView) -> list[RepeatIncident]:
        """Earlier incidents that look like this one, for the card; none if they cannot be found."""
        if self.repeats is None:
            return []
        try:
            return await self.repeats.similar(incident, await self.access.name(incident.channel_id))
        except Exception:  # the card matters more than its hint
            log.exception("could not look for earlier incidents like %s", incident.id)
            return []

    async def _post_card(self, incident: Incident) -> str:
        """Post the card, joining the channel first if the bot is not in it yet."""
        view = IncidentView.from_row(incident)
        card = incident_card(view, self.timeline_emojis, repeats=await self._repeats(view))
        try:
            response = await self.client.chat_postMessage(channel=incident.channel_id, **card)
        except SlackApiError as exc:
            # A private channel the bot is not in looks nonexistent to it: try joining either way.
            if error_code(exc) not in ("not_in_channel", "channel_not_found"):
                raise StartFailed(self._explain(exc)) from exc
            await self._join(incident.channel_id)
            try:
                response = await self.client.chat_postMessage(channel=incident.channel_id, **card)
            except SlackApiError as exc2:
                raise StartFailed(self._explain(exc2)) from exc2
        return str(response["ts"])

    async def _join(self, channel_id: str) -> None:
        try:
            await self.client.conversations_join(channel=channel_id)
        except SlackApiError as exc:
            code = error_code(exc)
            if code in ("method_not_supported_for_channel_type", "channel_not_found"):
                raise StartFailed(
                    "I can't post in this channel: if it is private, invite me with `/invite @postmortem-bot`, "
                    "then run `/postmortem start` again. Nothing was saved."
                ) from exc
            raise StartFailed(self._explain(exc)) from exc

    async def _pin(self, channel_id: str, ts: str) -> str | None:
        try:
            await self.client.pins_add(channel=channel_id, timestamp=ts)
        except SlackApiError as exc:
            code = error_code(exc)
            if code == "already_pinned":
                return None
            log.warning("could not pin the incident card in %s: %s", channel_id, code)
            return f"I could not pin the incident card ({code}); pin it by hand so people find it."
        return None

    async def _forget(self, incident: Incident) -> None:
        async with self.sessions.begin() as session:
            await delete_incident(session, incident.id)

    @staticmethod
    def _explain(exc: SlackApiError) -> str:
        code = error_code(exc)
        hints = {
            "channel_not_found": "Slack says this channel does not exist or I cannot see it.",
            "is_archived": "This channel is archived; start the incident in a live channel.",
            "ratelimited": "Slack is rate-limiting me right now; try again in a minute.",
        }
        return hints.get(code, f"Slack refused to post the incident card ({code}). Nothing was saved; try again.")
