"""Answers to action-item DMs, and review meetings.

Only the item's owner or the incident's commander may change an item; anyone else gets an
explanation. Every answer updates the item, replans its nudges, updates the DM in place,
and leaves a short reply in the incident channel's thread, so the next render shows it.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.access import AccessDenied, ChannelAccess
from bot.clock import Clock
from bot.ics import meeting_invite
from bot.nudges import NudgeService, answer_thread, restart_item_nudges
from bot.nudge_calendar import SNOOZES, local_date, zone
from bot.people import PeopleDirectory
from bot.slack import SLACK_FAILURES, error_code
from bot.ui.item_messages import (
    WHAT_CHANGE_DUE,
    WHAT_DONE,
    WHAT_IN_PROGRESS,
    WHAT_NOT_MINE,
    WHAT_SNOOZE,
    WHAT_WONT_DO,
    action_item_answered,
    channel_update,
    snooze_answer,
)
from bot.ui.meeting import meeting_scheduled
from bot.views import ActionItemView, IncidentView
from storage.action_items import get_action_item, team_action_item
from storage.db import SessionFactory
from storage.incidents import get_incident, team_incident
from storage.models import Incident

log = logging.getLogger("postmortem_bot.action_items")

MEETING_LENGTH = timedelta(hours=1)


@dataclass(frozen=True)
class MeetingSet:
    at: datetime
    problem: str | None = None  # what Slack refused, for the person who set the meeting


class NotAllowed(Exception):
    """The person may not change this item; the message says who can."""


class AnswerError(Exception):
    """The answer cannot be applied; the message says why."""


@dataclass(frozen=True)
class Answer:
    kind: str  # one of the WHAT_* answers but a snooze's length: WHAT_SNOOZE, with `snooze`
    snooze: str | None = None  # a schedule.SNOOZES key
    due: date | None = None
    new_owner: str | None = None
    note: str = ""


class ActionItemService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        people: PeopleDirectory,
        nudges: NudgeService,
        refresh_card: Callable[[Incident], Awaitable[None]],
        access: ChannelAccess,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.people = people
        self.nudges = nudges
        self.refresh_card = refresh_card
        self.access = access

    async def item(self, team_id: str, item_id: int) -> ActionItemView:
        """The item `item_id` of workspace `team_id`: ids come from button values and modal
        metadata, so another workspace's id is "no such item", never its item."""
        async with self.sessions() as session:
            item = await team_action_item(session, team_id, item_id)
            incident = await get_incident(session, item.incident_id) if item else None
        if item is None or incident is None or incident.team_id != team_id:
            raise AnswerError("This action item does not exist (any more) in this workspace.")
        return ActionItemView.from_row(item, incident)

    async def check_allowed(self, team_id: str, item_id: int, user_id: str) -> ActionItemView:
        """The item, if `user_id` may change it: its owner, or the commander.

        The owner may answer their own item even when the incident's channel is private
        and they are not in it: the commander (or the post-mortem) assigned it to them, and
        what they see here is that one item (title, due date, status), never the channel's
        timeline or document. Anyone else acts for the incident, so for a private channel
        they must also be one of its members (a commander who left it loses that right).
        """
        view = await self.item(team_id, item_id)
        if user_id == view.owner_id:
            return view
        if user_id != view.commander_id:
            raise NotAllowed(
                f"Only the owner (<@{view.owner_id}>) or the incident commander "
                f"(<@{view.commander_id}>) can change this action item."
            )
        try:
            await self.access.require_member(view.incident_channel, user_id)
        except AccessDenied as exc:
            raise NotAllowed(str(exc)) from exc
        return view

    async def answer(self, team_id: str, item_id: int, user_id: str, answer: Answer) -> ActionItemView:
        """Apply `answer` by `user_id`; returns the item as it now is."""
        await self.check_allowed(team_id, item_id, user_id)
        now = self.clock.now()
        what = ""
        async with self.sessions.begin() as session:
            item = await get_action_item(session, item_id, lock=True)
            assert item is not None
            if answer.kind == WHAT_DONE:
                item.status, what = "done", WHAT_DONE
            elif answer.kind == WHAT_IN_PROGRESS:
                item.status, what = "in_progress", WHAT_IN_PROGRESS
            elif answer.kind == WHAT_SNOOZE:
                key = answer.snooze or ""
                snooze = SNOOZES.get(key)
                if snooze is None:
                    raise AnswerError("Snooze for a day or a week.")
                item.snoozed_until = now + snooze.length
                item.status_note = answer.note or None
                what = snooze_answer(key)
            elif answer.kind == WHAT_CHANGE_DUE:
                tz = (await self.people.get(user_id)).tz
                if answer.due is None or answer.due < local_date(now, tz):
                    raise AnswerError("Pick a due date today or later.")
                item.due, item.snoozed_until = answer.due, None
                what = WHAT_CHANGE_DUE
            elif answer.kind == WHAT_WONT_DO:
                if not answer.note.strip():
                    raise AnswerError("Say why it won't be done: the reason goes into the post-mortem.")
                item.status, item.status_note = "wont_do", answer.note.strip()[:500]
                what = WHAT_WONT_DO
            elif answer.kind == WHAT_NOT_MINE:
                if answer.new_owner:
                    person = await self.people.get(answer.new_owner)
                    reason = person.not_a_person_reason()
                    if reason:
                        raise AnswerError(f"That account {reason}: pick a person.")
                    if answer.new_owner != item.owner_id:
                        item.owner_id = answer.new_owner
                        # A new owner starts the reminder sequence afresh (assignment first).
                        await restart_item_nudges(session, item_id)
                what = WHAT_NOT_MINE
                item.status_note = answer.note or item.status_note
            else:
                raise AnswerError(f"Unknown answer {answer.kind}")
            item.updated_at = now
        view = await self.item(team_id, item_id)
        await self.nudges.plan_item(item_id)
        await self._tell(view, by=user_id, what=what, answer=answer)
        return view

    async def _tell(self, item: ActionItemView, *, by: str, what: str, answer: Answer) -> None:
        """The DM in place, the channel's thread, and the commander when it is not theirs.

        The channel's reply is the record others read: if Slack refuses it past the client's
        retries, it is queued and the next sweep posts it (once, keyed like a nudge).
        """
        async with self.sessions() as session:
            row = await get_action_item(session, item.id)
            incident = await get_incident(session, row.incident_id)
            thread = await answer_thread(session, incident) if incident is not None else None
        if row.dm_channel and row.dm_ts:
            await self._safely(
                self.client.chat_update(channel=row.dm_channel, ts=row.dm_ts, **action_item_answered(item, by=by, what=what))
            )
        told = await self._safely(
            self.client.chat_postMessage(
                channel=item.incident_channel, thread_ts=thread, **channel_update(item, by=by, what=what)
            )
        )
        if not told:
            await self.nudges.defer_answer_reply(item.id, item.incident_channel, what=what, by=by)
        if answer.kind == WHAT_NOT_MINE:  # the commander decides who owns it in the end
            await self._safely(
                self.client.chat_postMessage(channel=item.commander_id, **channel_update(item, by=by, what=what))
            )

    async def _safely(self, call: Any) -> bool:
        try:
            await call
        except SlackApiError as exc:
            log.warning("could not tell Slack about an action-item answer: %s", error_code(exc))
            return False
        return True

    # --- review meetings -----------------------------------------------------------------

    async def schedule_meeting(
        self, *, team_id: str, incident_id: int, user_id: str, day: date, at: time, attendees: list[str], location: str = ""
    ) -> "MeetingSet":
        """Fix the review meeting: announce it with an .ics invite, plan agenda and follow-up.

        The meeting stands whatever Slack says; what Slack refused (past the client's
        retries) comes back in `problem`, for the person who set it.
        """
        await self.incident_summary(team_id, incident_id, user_id)  # this workspace's, and theirs to act on
        tz = (await self.people.get(user_id)).tz
        meeting_at = datetime.combine(day, at, tzinfo=zone(tz)).astimezone(self.clock.now().tzinfo)
        if meeting_at < self.clock.now():
            raise AnswerError("That time has passed: pick a time still to come.")
        async with self.sessions.begin() as session:
            incident = await get_incident(session, incident_id, lock=True)
            if incident is None:
                raise AnswerError("That incident no longer exists.")
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
                    channel=incident.channel_id, thread_ts=posted["ts"], content=invite,
                    filename="postmortem-review.ics", title="Calendar invite",
                )
            except SLACK_FAILURES as exc:
                # Announced already: setting it again would announce it twice; say what is missing.
                log.warning("meeting invite for incident %s failed: %s", incident.id, error_code(exc))
                problem = f"It is announced, but Slack refused the calendar invite ({error_code(exc)})."
        await self.nudges.plan_incident(incident.id)
        await self.refresh_card(incident)
        return MeetingSet(at=meeting_at, problem=problem)

    async def incident_summary(self, team_id: str, incident_id: int, user_id: str) -> IncidentView:
        """What the meeting form shows about its incident, if `user_id` may act on it."""
        async with self.sessions() as session:
            incident = await team_incident(session, team_id, incident_id)
        if incident is None:
            raise AnswerError("That incident does not exist in this workspace. Nothing was changed.")
        try:
            await self.access.require_member(incident.channel_id, user_id)
        except AccessDenied as exc:
            raise AnswerError(str(exc)) from exc
        return IncidentView.from_row(incident)
