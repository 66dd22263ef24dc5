"""Action items: created (by `/postmortem action` or the post-mortem form), answered, removed.

ActionItemService is their one owner. The post-mortem form's rows are stored through it, in
the submission's own transaction (the session is passed in), so a revision and its items
commit together. Only the item's owner or the incident's commander may answer an item;
anyone else gets an explanation. Every answer updates the item, replans its nudges, updates
the DM in place, and leaves a short reply in the incident channel's thread, so the next
render shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import AccessDenied, ChannelAccess
from bot.clock import Clock
from bot.home import HomeService
from bot.incidents import NO_INCIDENT_HERE
from bot.nudge_calendar import SNOOZES, local_date
from bot.nudges import NudgeService, answer_thread, cancel_item_nudges, restart_item_nudges
from bot.people import PeopleDirectory
from bot.postmortem_content import ActionItemDraft
from bot.slack import error_code
from bot.trackers.service import TicketService, owe_sync, owe_tickets
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
from bot.views import ActionItemView
from storage.action_items import (
    create_action_item,
    delete_action_items,
    get_action_item,
    incident_action_items,
    team_action_item,
)
from storage.db import SessionFactory
from storage.incidents import get_incident, latest_incident
from storage.models import ActionItem, Incident

log = logging.getLogger("postmortem_bot.action_items")


class NotAllowed(Exception):
    """The person may not change this item; the message says who can."""


class AnswerError(Exception):
    """The item cannot be added or the answer applied; the message says why."""


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
        access: ChannelAccess,
        tickets: TicketService | None = None,
        home: HomeService | None = None,
    ) -> None:
        self.tickets = tickets
        self.home = home
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.people = people
        self.nudges = nudges
        self.access = access

    # --- creating, and the post-mortem form's rows -------------------------------------------

    async def add_action_item(
        self, *, team_id: str, channel_id: str, user_id: str, owner: str, due: date, title: str
    ) -> ActionItem:
        """`/postmortem action`: one person, a date not in the past, a title."""
        try:
            await self.access.require_member(channel_id, user_id)  # no session open: it may ask Slack
        except AccessDenied as exc:
            raise AnswerError(str(exc)) from exc
        person = await self.people.get(owner)
        reason = person.not_a_person_reason()
        if reason:
            raise AnswerError(f"<@{owner}> {reason}: an action item needs one human owner.")
        submitter = await self.people.get(user_id)
        if due < local_date(self.clock.now(), submitter.tz):
            raise AnswerError(f"{due.isoformat()} is in the past: pick today or later.")
        async with self.sessions() as session:
            incident = await latest_incident(session, channel_id, team_id)
        if incident is None:
            raise AnswerError(NO_INCIDENT_HERE)
        now = self.clock.now()
        async with self.sessions.begin() as session:
            item = await create_action_item(
                session,
                team_id=team_id,
                incident_id=incident.id,
                title=title[:300],
                owner_id=owner,
                due=due,
                created_by=user_id,
                at=now,
            )
            if self.tickets and self.tickets.enabled and await self.tickets.submitted(session, incident.id):
                await owe_tickets(session, team_id, [item.id], now)  # added after the post-mortem: a ticket now
        # No draft to update: the form shows every stored item of the incident.
        await self.nudges.plan_item(item.id)
        if self.tickets:
            self.tickets.kick()
        await self._refresh_home(team_id, [owner])
        return item

    async def form_rows(self, session: AsyncSession, incident_id: int, *, lock: bool = False) -> list[ActionItemDraft]:
        """The incident's stored action items, as the post-mortem form's rows show them."""
        return [_row_of(item) for item in await incident_action_items(session, incident_id, lock=lock)]

    async def store_form_rows(
        self,
        session: AsyncSession,
        incident: Incident,
        rows: Sequence[ActionItemDraft],
        removed_ids: Iterable[int],
        user_id: str,
    ) -> tuple[list[ActionItemDraft], list[int]]:
        """Store the form's rows as action items in the caller's transaction, each stored item
        updated in place, and delete the removed ones. Returns the rows as "i<id>" rows and
        the items whose reminders must be planned (by `plan_reminders`, once committed): new
        ones, and those whose owner or due date changed."""
        now = self.clock.now()
        existing = {item.id: item for item in await incident_action_items(session, incident.id)}
        kept_ids: set[int] = set()
        to_plan: list[int] = []
        synced: list[int] = []  # items whose ticket must follow a change
        stored_rows = []
        for row in rows:
            if row.is_blank():
                continue
            item = existing.get(row.item_id) if row.item_id is not None else None
            if item is None:
                item = await create_action_item(
                    session,
                    team_id=incident.team_id,
                    incident_id=incident.id,
                    title="",
                    owner_id=row.owner or user_id,
                    due=row.due or now.date(),
                    created_by=user_id,
                    at=now,
                )
                to_plan.append(item.id)
            values = {
                "title": row.title.strip()[:300],
                "owner_id": row.owner or item.owner_id,
                "due": row.due or item.due,
                "priority": row.priority,
                "type": row.type,
                "ticket_url": row.ticket_url.strip() or None,
            }
            changed = {name for name, value in values.items() if getattr(item, name) != value}
            if changed:
                for name in changed:
                    setattr(item, name, values[name])
                item.updated_at = now
            if changed & {"owner_id", "due"} and item.ticket_key:
                synced.append(item.id)
            if "owner_id" in changed and item.id not in to_plan:
                # A new owner is a new assignment: their reminders start with the DM saying so.
                await restart_item_nudges(session, item.id)
            if changed & {"owner_id", "due"} and item.id not in to_plan:
                to_plan.append(item.id)
            kept_ids.add(item.id)
            stored_rows.append(replace(row, key=f"i{item.id}", edited=[]))
        removed = (set(removed_ids) & set(existing)) - kept_ids
        if removed:
            await cancel_item_nudges(session, removed)
            await delete_action_items(session, incident.id, removed)
        if self.tickets and self.tickets.enabled:
            await self._owe_tickets(session, incident, kept_ids, synced, now)
        return stored_rows, to_plan

    async def _owe_tickets(
        self, session: AsyncSession, incident: Incident, kept_ids: set[int], synced: list[int], now: Any
    ) -> None:
        """On submission, in its transaction: a ticket for every item without one; a link
        typed in the form to one of our trackers is adopted (no second ticket)."""
        assert self.tickets is not None
        create: list[int] = []
        for item in await incident_action_items(session, incident.id):
            if item.id not in kept_ids or item.ticket_key:
                continue
            adopted = self.tickets.key_of_url(item.ticket_url) if item.ticket_url else None
            if adopted:
                item.ticket_tracker, item.ticket_key = adopted
                item.ticket_ref = adopted[1]
                synced.append(item.id)
            elif not item.ticket_url:
                create.append(item.id)
        await owe_tickets(session, incident.team_id, create, now)
        await owe_sync(session, incident.team_id, synced, now)

    async def plan_reminders(self, item_ids: Sequence[int]) -> None:
        """The next nudge of each item that needs one (the assignment DM first); and the
        tickets the submission owes, made now (briefly) so the shared document names them."""
        for item_id in item_ids:
            await self.nudges.plan_item(item_id)
        if self.tickets:
            await self.tickets.run_now()
        if self.home is not None and item_ids:
            async with self.sessions() as session:
                items = [await get_action_item(session, i) for i in item_ids]
            for item in items:
                if item is not None:
                    await self._refresh_home(item.team_id, [item.owner_id])

    async def _refresh_home(self, team_id: str, user_ids: Iterable[str]) -> None:
        """Publish the App Home of the people an item change concerns (assigned, answered)."""
        if self.home is not None:
            await self.home.refresh(team_id, user_ids)

    # --- answers ------------------------------------------------------------------------------

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
        before = await self.check_allowed(team_id, item_id, user_id)
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
            if self.tickets and self.tickets.enabled:
                if item.ticket_key:
                    await owe_sync(session, item.team_id, [item.id], now)  # done, won't do, due, owner: to the ticket
                elif (
                    answer.kind == WHAT_NOT_MINE
                    and not item.ticket_url
                    and await self.tickets.submitted(session, item.incident_id)
                ):
                    await owe_tickets(session, item.team_id, [item.id], now)
        view = await self.item(team_id, item_id)
        await self.nudges.plan_item(item_id)
        await self._tell(view, by=user_id, what=what, answer=answer)
        if self.tickets:
            self.tickets.kick()
        await self._refresh_home(team_id, [view.owner_id, before.owner_id, user_id])
        return view

    async def _tell(self, item: ActionItemView, *, by: str, what: str, answer: Answer) -> None:
        """The DM in place, the channel's thread, and the commander when it is not theirs.

        The channel's reply is the record others read: if Slack refuses it past the client's
        retries, it is queued and the next sweep posts it (once, keyed like a nudge).
        """
        async with self.sessions() as session:
            row = await get_action_item(session, item.id)
            if row is None:  # removed from the post-mortem since the answer: nothing left to tell
                return
            incident = await get_incident(session, row.incident_id)
            thread = await answer_thread(session, incident) if incident is not None else None
        if row.dm_channel and row.dm_ts:
            await self._safely(
                self.client.chat_update(
                    channel=row.dm_channel, ts=row.dm_ts, **action_item_answered(item, by=by, what=what)
                )
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


def _row_of(item: ActionItem) -> ActionItemDraft:
    return ActionItemDraft(
        key=f"i{item.id}",
        title=item.title,
        owner=item.owner_id,
        due=item.due,
        priority=item.priority,
        type=item.type,
        ticket_url=item.ticket_url or "",
    )
