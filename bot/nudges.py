"""Follow-through: the schedule of nudges (the sweep that sends them is bot/sweep.py).

The database is the schedule (DESIGN.md). Each subject (an action item, an incident's
meeting) has at most one pending nudge: the next one. A sweep claims due rows atomically
(FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises writers), sends each, marks it
sent, and plans the subject's next nudge. Its cost follows what is due, not what exists.

Exactly once: every message carries its nudge's key in Slack message metadata. A claim
left behind by a crash (between send and mark) is recovered after a lease by asking Slack
whether the message exists: if it does, the row is marked sent; if not, it is sent now.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot import nudge_calendar
from bot.clock import Clock
from bot.people import PeopleDirectory
from bot.repeats import RepeatFinder
from bot.views import ActionItemView
from storage.action_items import get_action_item, remember_item_dm
from storage.db import SessionFactory
from storage.incidents import get_incident
from storage.models import SENT, ActionItem, Incident, Nudge
from storage.nudges import (
    cancel_pending_nudges,
    cancel_pending_of_subjects,
    forget_unclaimed_nudges,
    last_sent_nudge,
    mark_nudge_sent,
    put_nudge,
    put_nudges,
)
from storage.postmortems import summary_ts_of

log = logging.getLogger("postmortem_bot.nudges")

NUDGE_EVENT_TYPE = "postmortem_nudge"
# A claim older than this is taken to be a crashed sweeper's.
CLAIM_LEASE = timedelta(minutes=5)
# How far Slack's clock and the bot's may disagree, when looking for a message by its time.
CLOCK_SKEW = timedelta(minutes=5)
SWEEP_BATCH = 200  # nudges claimed, composed and marked together
# Recipients posted to at once. Slack limits chat.postMessage per channel (about one a
# second), not per workspace at this scale, so a batch of DMs to different people can go
# out together; one recipient's messages still go one after another.
SEND_CONCURRENCY = 32
RETRY_BACKOFF = timedelta(minutes=10)
# A pending reminder this far past its time was planned before an outage.
STALE_AFTER = timedelta(hours=12)
MAX_ATTEMPTS = 5
# Slack's answers that mean "this person cannot be reached", not "try again".
UNREACHABLE = {
    "user_disabled",
    "user_not_found",
    "cannot_dm_bot",
    "channel_not_found",
    "account_inactive",
    "is_archived",
}

ITEM_KINDS = ("action_item", "overdue_commander", "overdue_channel")
# An answer's reply in the incident channel that Slack refused when it was given: the sweep
# posts it (slot "<what>:<by>:<when>"), with the same key-in-metadata guarantee as a nudge.
ANSWER_REPLY = "answer_reply"


# Another service's kind of nudge (the quarterly review): its message, and its planning each sweep.
Composer = Callable[[Nudge, datetime], Awaitable[dict[str, Any] | None]]
Planner = Callable[[datetime], Awaitable[None]]


def item_subject(item_id: int) -> str:
    return f"action_item:{item_id}"


def incident_subject(incident_id: int) -> str:
    return f"incident:{incident_id}"


async def restart_item_nudges(session: AsyncSession, item_id: int) -> None:
    """Forget an item's reminders (but one a sweep is sending), in the caller's transaction,
    so its next plan starts again with the assignment DM: what a new owner gets."""
    await forget_unclaimed_nudges(session, item_subject(item_id), ITEM_KINDS)


async def cancel_item_nudges(session: AsyncSession, item_ids: Iterable[int]) -> None:
    """Cancel what is still to be sent about items that are being deleted, in the caller's
    transaction (the sweep would find nothing to say, but need not look)."""
    subjects = [item_subject(i) for i in item_ids]
    if subjects:
        await cancel_pending_of_subjects(session, subjects)


def subject_id(subject: str) -> int:
    return int(subject.split(":", 1)[1])


@dataclass
class SweepReport:
    sent: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [f"sent {k}" for k in self.sent]
            + [f"recovered {k} (already in Slack)" for k in self.recovered]
            + [f"retry later {k}" for k in self.retried]
            + [f"failed {k}" for k in self.failed]
        )


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


async def answer_thread(session: AsyncSession, incident: Incident) -> str | None:
    """Where answers about an incident's items are told: the summary's thread, else the card's."""
    return await summary_ts_of(session, incident.id) or incident.card_ts


@dataclass(frozen=True)
class Delivered:
    """A nudge Slack has (sent now, or found there on recovery): the message, and when."""

    nudge: Nudge
    at: datetime
    channel: str
    ts: str


class NudgeService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        people: PeopleDirectory,
        hours: nudge_calendar.WorkingHours,
        timeline_emojis: tuple[str, ...],
        worker_id: str | None = None,
    ) -> None:
        self.timeline_emojis = timeline_emojis
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.people = people
        self.hours = hours
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.composers: dict[str, Composer] = {}
        self.planners: list[Planner] = []

    def add_kind(self, kind: str, *, compose: Composer, plan: Planner | None = None) -> None:
        """Another service's kind of nudge: `compose` writes its message when it is due (None:
        nothing to say), `plan` puts its rows at the start of every sweep. Claimed, sent and
        recovered exactly once like the others; marked sent with nothing planned after."""
        self.composers[kind] = compose
        if plan is not None:
            self.planners.append(plan)

    # --- planning --------------------------------------------------------------------------

    async def plan_item(self, item_id: int, delivered: Delivered | None = None) -> None:
        """(Re)plan an action item's next nudge from its current state.

        With `delivered` (its reminder, now in Slack), that reminder is marked sent in the
        transaction that plans the next one: a crash leaves both done or neither (then the
        claim is recovered from Slack), never a sent reminder with none planned after it.
        """
        async with self.sessions() as session:
            item = await get_action_item(session, item_id)
            last = None if delivered else await last_sent_nudge(session, item_subject(item_id), "action_item")
        if item is None and delivered is None:
            return
        planned = None
        if item is not None:
            last_slot, last_sent_at = (
                (delivered.nudge.slot, delivered.at)
                if delivered
                else ((last.slot, last.sent_at) if last else (None, None))
            )
            tz = (await self.people.get(item.owner_id)).tz
            planned = nudge_calendar.next_action_item_nudge(
                due=item.due,
                status=item.status,
                assigned_notified=last_slot is not None,
                last_slot=last_slot,
                last_sent_at=last_sent_at,
                snoozed_until=item.snoozed_until,
                now=self.clock.now(),
                tz=tz,
                hours=self.hours,
            )
        async with self.sessions.begin() as session:
            if delivered is not None:
                await self._mark_sent(session, delivered)
                await remember_item_dm(session, item_id, delivered.channel, delivered.ts)
            # Re-read under lock: an answer may have landed since the plan was computed
            # (a snooze's replanning finishing after a "done"), and the latest state wins.
            item = await get_action_item(session, item_id, lock=True)
            await cancel_pending_nudges(session, item_subject(item_id), ITEM_KINDS)
            if planned is None or item is None or item.status in ("done", "wont_do"):
                return
            incident = await get_incident(session, item.incident_id)
            assert incident is not None
            await put_nudges(session, self.item_nudge_rows(item, incident, planned), now=self.clock.now())

    def item_nudge_rows(
        self, item: ActionItem, incident: Incident, planned: nudge_calendar.PlannedNudge
    ) -> list[dict[str, Any]]:
        """The rows that plan an item's next reminder, and the escalations that go with it."""
        subject = item_subject(item.id)
        rows = [dict(kind="action_item", recipient=item.owner_id)]
        tell_commander, tell_channel = nudge_calendar.escalation(planned.slot)
        if tell_commander:
            rows.append(dict(kind="overdue_commander", recipient=incident.commander_id))
        if tell_channel:
            rows.append(dict(kind="overdue_channel", recipient=incident.channel_id))
        return [
            dict(row, team_id=item.team_id, subject=subject, slot=planned.slot, not_before=planned.not_before)
            for row in rows
        ]

    async def plan_incident(self, incident_id: int, delivered: Delivered | None = None) -> None:
        """(Re)plan an incident's meeting nudges: unscheduled reminders, agenda, publication, 30-day review.

        With `delivered` (its "schedule the meeting" reminder, now in Slack), that one is
        marked sent in the transaction that plans the next, as in `plan_item`.
        """
        async with self.sessions() as session:
            incident = await get_incident(session, incident_id)
            last = (
                None
                if delivered
                else await last_sent_nudge(session, incident_subject(incident_id), "meeting_unscheduled")
            )
        if incident is None or incident.resolved_at is None:
            if delivered is not None:
                async with self.sessions.begin() as session:
                    await self._mark_sent(session, delivered)
            return
        tz = (await self.people.get(incident.commander_id)).tz
        now = self.clock.now()
        deadline = nudge_calendar.meeting_deadline(
            incident.resolved_at, incident.severity, requested=incident.meeting_requested, tz=tz
        )
        planned = nudge_calendar.next_meeting_nudge(
            resolved_at=incident.resolved_at,
            deadline=deadline,
            scheduled=incident.meeting_at is not None,
            last_sent_at=delivered.at if delivered else (last.sent_at if last else None),
            now=now,
            tz=tz,
            hours=self.hours,
        )
        subject = incident_subject(incident_id)
        async with self.sessions.begin() as session:
            if delivered is not None:
                await self._mark_sent(session, delivered)
            await cancel_pending_nudges(
                session, subject, ("meeting_unscheduled", "meeting_agenda", "publication_request")
            )
            if planned is not None:
                await self._put(
                    session,
                    incident.team_id,
                    "meeting_unscheduled",
                    subject,
                    planned.slot,
                    incident.commander_id,
                    planned.not_before,
                )
            if incident.meeting_at is not None:
                slot = incident.meeting_at.strftime("%Y%m%dT%H%M")
                agenda_at = max(nudge_calendar.meeting_agenda_at(incident.meeting_at), now)
                await self._put(
                    session, incident.team_id, "meeting_agenda", subject, slot, incident.channel_id, agenda_at
                )
                await self._put(
                    session,
                    incident.team_id,
                    "publication_request",
                    subject,
                    slot,
                    incident.channel_id,
                    nudge_calendar.publication_request_at(incident.meeting_at),
                )
            await self._put(
                session,
                incident.team_id,
                "review_30d",
                subject,
                "30d",
                incident.channel_id,
                nudge_calendar.review_at(incident.resolved_at),
            )

    async def _put(
        self,
        session: AsyncSession,
        team_id: str,
        kind: str,
        subject: str,
        slot: str,
        recipient: str,
        not_before: datetime,
    ) -> None:
        """Plan a nudge (see `put_nudge`), created now."""
        await put_nudge(
            session,
            team_id=team_id,
            kind=kind,
            subject=subject,
            slot=slot,
            recipient=recipient,
            not_before=not_before,
            now=self.clock.now(),
        )

    async def defer_answer_reply(self, item_id: int, channel_id: str, *, what: str, by: str) -> None:
        """Queue an answer's channel reply that Slack refused past the client's retries; the
        next sweep posts it in the item's thread, once."""
        now = self.clock.now()
        async with self.sessions.begin() as session:
            item = await get_action_item(session, item_id)
            if item is None:
                return
            await self._put(
                session,
                item.team_id,
                ANSWER_REPLY,
                item_subject(item_id),
                f"{what}:{by}:{_base36(int(now.timestamp()))}",
                channel_id,
                now,
            )

    # --- the sweep (bot/sweep.py) ------------------------------------------------------------

    async def sweep(self, now: datetime | None = None, limit: int = SWEEP_BATCH) -> SweepReport:
        """Send what is due at `now`, once. Safe to run in several processes at once."""
        from bot.sweep import NudgeSweep  # the sweep uses this module's planning

        return await NudgeSweep(self).sweep(now or self.clock.now(), limit)

    async def earlier_open_items(self, incident: Incident) -> list[ActionItemView]:
        """For the agenda's completion review: earlier incidents' open items of this one's cause."""
        return await RepeatFinder(self.sessions).open_items_of_same_cause(incident.id, incident.team_id)

    async def _mark_sent(self, session: AsyncSession, delivered: Delivered) -> None:
        nudge, now, channel, ts = delivered.nudge, delivered.at, delivered.channel, delivered.ts
        await mark_nudge_sent(session, nudge.id, at=now, channel=channel, ts=ts)
        nudge.status, nudge.sent_at, nudge.message_channel, nudge.message_ts = SENT, now, channel, ts
