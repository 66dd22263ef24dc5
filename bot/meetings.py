"""Review meetings: fixing one for an incident, announcing it with its .ics invite.

Who may set it is checked against the workspace and the channel; the meeting stands once
stored, whatever Slack then refuses. The nudges it sets off (agenda, publication request)
are planned by NudgeService; the card, which shows it, is redrawn by IncidentService.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.access import AccessDenied, ChannelAccess
from bot.clock import Clock
from bot.ics import meeting_invite
from bot.incidents import IncidentService
from bot.nudge_calendar import zone
from bot.nudges import NudgeService
from bot.people import PeopleDirectory
from bot.slack import SLACK_FAILURES, error_code
from bot.ui.meeting import meeting_scheduled
from bot.views import IncidentView
from storage.db import SessionFactory
from storage.incidents import get_incident, team_incident

log = logging.getLogger("postmortem_bot.meetings")

MEETING_LENGTH = timedelta(hours=1)


class MeetingError(Exception):
    """The meeting cannot be set; the message says why."""


@dataclass(frozen=True)
class MeetingSet:
    at: datetime
    problem: str | None = None  # what Slack refused, for the person who set the meeting


class MeetingService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        people: PeopleDirectory,
        nudges: NudgeService,
        incidents: IncidentService,
        access: ChannelAccess,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.people = people
        self.nudges = nudges
        self.incidents = incidents
        self.access = access

    async def schedule_meeting(
        self,
        *,
        team_id: str,
        incident_id: int,
        user_id: str,
        day: date,
        at: time,
        attendees: list[str],
        location: str = "",
    ) -> MeetingSet:
        """Fix the review meeting: announce it with an .ics invite, plan agenda and follow-up.

        The meeting stands whatever Slack says; what Slack refused (past the client's
        retries) comes back in `problem`, for the person who set it.
        """
        await self.incident_summary(team_id, incident_id, user_id)  # this workspace's, and theirs to act on
        tz = (await self.people.get(user_id)).tz
        meeting_at = datetime.combine(day, at, tzinfo=zone(tz)).astimezone(self.clock.now().tzinfo)
        if meeting_at < self.clock.now():
            raise MeetingError("That time has passed: pick a time still to come.")
        async with self.sessions.begin() as session:
            incident = await get_incident(session, incident_id, lock=True)
            if incident is None:
                raise MeetingError("That incident no longer exists.")
            incident.meeting_at = meeting_at
            incident.meeting_attendees = sorted(set(attendees))
            incident.meeting_requested = True
        names = await self.people.names(attendees)
        problem = None
        try:
            posted = await self.client.chat_postMessage(
                channel=incident.channel_id,
                **meeting_scheduled(
                    IncidentView.from_row(incident), at=meeting_at, attendees=attendees, by=user_id, location=location
                ),
            )
        except SLACK_FAILURES as exc:
            log.warning("meeting announcement for incident %s failed: %s", incident.id, error_code(exc))
            posted = None
            problem = (
                f"Slack refused to announce it in the channel ({error_code(exc)}): "
                "set the meeting again to announce it."
            )
        if posted is not None:
            invite = meeting_invite(
                uid=f"postmortem-{incident.id}-{secrets.token_hex(4)}@postmortem-bot",
                title=f"Post-mortem review: {incident.title}",
                start=meeting_at,
                duration=MEETING_LENGTH,
                attendees_emails_or_names=[names.get(a, a) for a in attendees],
                description=f"Review of the incident in Slack channel {incident.channel_id}. {location}".strip(),
                organizer=names.get(user_id, user_id),
                now=self.clock.now(),
                location=location,
            )
            try:
                await self.client.files_upload_v2(
                    channel=incident.channel_id,
                    thread_ts=posted["ts"],
                    content=invite,
                    filename="postmortem-review.ics",
                    title="Calendar invite",
                )
            except SLACK_FAILURES as exc:
                # Announced already: setting it again would announce it twice; say what is missing.
                log.warning("meeting invite for incident %s failed: %s", incident.id, error_code(exc))
                problem = f"It is announced, but Slack refused the calendar invite ({error_code(exc)})."
        await self.nudges.plan_incident(incident.id)
        await self.incidents.refresh_card(incident)
        return MeetingSet(at=meeting_at, problem=problem)

    async def incident_summary(self, team_id: str, incident_id: int, user_id: str) -> IncidentView:
        """What the meeting form shows about its incident, if `user_id` may act on it."""
        async with self.sessions() as session:
            incident = await team_incident(session, team_id, incident_id)
        if incident is None:
            raise MeetingError("That incident does not exist in this workspace. Nothing was changed.")
        try:
            await self.access.require_member(incident.channel_id, user_id)
        except AccessDenied as exc:
            raise MeetingError(str(exc)) from exc
        return IncidentView.from_row(incident)
