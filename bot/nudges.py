"""Follow-through: the schedule of nudges, and the sweep that sends them exactly once.

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

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot import nudge_calendar
from bot.clock import Clock
from bot.payloads import datetime_to_ts
from bot.people import PeopleDirectory
from bot.repeats import RepeatFinder
from bot.slack import error_code, find_by_metadata
from bot.timeline import load_timeline
from bot.ui import item_messages, meeting
from bot.ui.timeline import entry_line
from bot.views import ActionItemView, IncidentView
from storage.action_items import get_action_item, incident_action_items, remember_item_dm
from storage.db import SessionFactory
from storage.incidents import get_incident
from storage.models import CANCELLED, SENT, Incident, Nudge
from storage.nudges import (
    cancel_pending_nudges,
    cancel_pending_of_subjects,
    claim_due_nudges,
    forget_unclaimed_nudges,
    last_sent_nudge,
    mark_nudge_failed,
    mark_nudge_sent,
    pending_subjects_due_before,
    put_nudge,
    release_nudge,
    set_nudge_status,
    take_over_claims,
)
from storage.postmortems import summary_ts_of

log = logging.getLogger("postmortem_bot.nudges")

NUDGE_EVENT_TYPE = "postmortem_nudge"
# A claim older than this is taken to be a crashed sweeper's.
CLAIM_LEASE = timedelta(minutes=5)
# How far Slack's clock and the bot's may disagree, when looking for a message by its time.
CLOCK_SKEW = timedelta(minutes=5)
SWEEP_BATCH = 200
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
            await self._put(
                session,
                item.team_id,
                "action_item",
                item_subject(item_id),
                planned.slot,
                item.owner_id,
                planned.not_before,
            )
            tell_commander, tell_channel = nudge_calendar.escalation(planned.slot)
            if tell_commander:
                await self._put(
                    session,
                    item.team_id,
                    "overdue_commander",
                    item_subject(item_id),
                    planned.slot,
                    incident.commander_id,
                    planned.not_before,
                )
            if tell_channel:
                await self._put(
                    session,
                    item.team_id,
                    "overdue_channel",
                    item_subject(item_id),
                    planned.slot,
                    incident.channel_id,
                    planned.not_before,
                )

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

    # --- the sweep -------------------------------------------------------------------------

    async def sweep(self, now: datetime | None = None, limit: int = SWEEP_BATCH) -> SweepReport:
        """Send what is due at `now`, once. Safe to run in several processes at once."""
        now = now or self.clock.now()
        report = SweepReport()
        for plan in self.planners:
            await plan(now)
        for nudge, claimed_at in await self._stale_claims(now):
            await self._recover(nudge, claimed_at, now, report)
        await self._replan_overdue(now)
        while True:
            batch = await self._claim(now, limit)
            for nudge in batch:
                await self._deliver(nudge, now, report)
            if len(batch) < limit:
                return report

    async def _replan_overdue(self, now: datetime) -> None:
        """After downtime, an action item's pending reminder may name a slot whose day has
        gone: plan it again, so one current reminder goes out instead of a stale one first."""
        async with self.sessions() as session:
            subjects = await pending_subjects_due_before(session, "action_item", now - STALE_AFTER)
        for subject in subjects:
            await self.plan_item(subject_id(subject))

    async def _claim(self, now: datetime, limit: int) -> list[Nudge]:
        async with self.sessions.begin() as session:
            return await claim_due_nudges(session, now, limit, self.worker_id)

    async def _stale_claims(self, now: datetime) -> list[tuple[Nudge, datetime]]:
        """Claims past their lease, taken over at `now`; each with the time it was claimed."""
        async with self.sessions.begin() as session:
            return await take_over_claims(session, now - CLAIM_LEASE, now, self.worker_id)

    async def _recover(self, nudge: Nudge, claimed_at: datetime, now: datetime, report: SweepReport) -> None:
        """A crashed sweeper's claim: sent already (Slack has it) or not (send it now)."""
        try:
            found = await self._find_in_slack(nudge, since=min(nudge.not_before, claimed_at))
        except SlackApiError as exc:
            code = error_code(exc)
            if code in UNREACHABLE:
                await self._fail(nudge, code)
                report.failed.append(f"{nudge.key} ({code})")
                return
            log.warning("cannot check Slack for %s (%s); will retry", nudge.key, code)
            await self._release(nudge, now, code)
            return
        if found is None:
            await self._deliver(nudge, now, report)
            return
        channel, ts = found
        await self._sent(Delivered(nudge, now, channel, ts))
        report.recovered.append(nudge.key)

    async def _find_in_slack(self, nudge: Nudge, since: datetime) -> tuple[str, str] | None:
        """The message a crashed sweeper posted for `nudge`, by the key in its metadata.

        Searched from `since` less CLOCK_SKEW: the earlier of the nudge's time (no sweeper
        sends before it, and claims never move it) and the claim being recovered. Not from
        the recovery's own time: after a crash and a longer downtime, or a recovery itself
        killed (it re-claims at its own time), the message is older by any amount. Every
        page is read: a busy channel can hold more than one page since then.
        """
        return await find_by_metadata(
            self.client, nudge.recipient, NUDGE_EVENT_TYPE, nudge.key, oldest=datetime_to_ts(since - CLOCK_SKEW)
        )

    async def _reachable(self, recipient: str) -> str | None:
        """Why a person cannot be nudged, or None. Slack still delivers to a deactivated
        user's existing DM, so the bot asks who they are instead of trusting the post."""
        if not recipient.startswith(("U", "W")):
            return None
        person = await self.people.get(recipient)
        if person.deleted:
            return "user_disabled"
        if person.is_bot:
            return "cannot_dm_bot"
        return None

    async def _deliver(self, nudge: Nudge, now: datetime, report: SweepReport) -> None:
        unreachable = await self._reachable(nudge.recipient)
        if unreachable:
            await self._fail(nudge, unreachable)
            report.failed.append(f"{nudge.key} ({unreachable})")
            return
        try:
            message = await self._compose(nudge, now)
        except Exception as exc:  # never let one nudge stop the others
            log.exception("nudge %s could not be composed", nudge.key)
            await self._release(nudge, now + RETRY_BACKOFF, type(exc).__name__)
            report.retried.append(f"{nudge.key} ({type(exc).__name__})")
            return
        if message is None:  # the subject moved on (done, scheduled, deleted): nothing to say
            await self._set_status(nudge, CANCELLED)
            return
        try:
            posted = await self.client.chat_postMessage(
                channel=nudge.recipient,
                metadata={"event_type": NUDGE_EVENT_TYPE, "event_payload": {"key": nudge.key}},
                **message,
            )
        except SlackApiError as exc:
            code = error_code(exc)
            if code in UNREACHABLE or nudge.attempts >= MAX_ATTEMPTS:
                await self._fail(nudge, code)
                report.failed.append(f"{nudge.key} ({code})")
            else:
                await self._release(nudge, now + RETRY_BACKOFF, code)
                report.retried.append(f"{nudge.key} ({code})")
            return
        except Exception as exc:
            # A timeout or a cut connection says nothing of whether Slack posted it. The row
            # stays claimed: after the lease, recovery looks for its key in Slack before
            # sending, so an uncertain post is never sent twice.
            log.warning("nudge %s: outcome unknown (%s); Slack is checked after the lease", nudge.key, error_code(exc))
            report.retried.append(f"{nudge.key} ({error_code(exc)}, checked after the lease)")
            return
        await self._sent(Delivered(nudge, now, posted["channel"], posted["ts"]))
        report.sent.append(nudge.key)

    async def _compose(self, nudge: Nudge, now: datetime) -> dict[str, Any] | None:
        """The message for `nudge`, from the subject's state now; None when it has nothing to say.

        The database is read first and the session closed before anything else: on SQLite an
        open session holds the write lock, so no Slack call or second session may happen in it.
        """
        composer = self.composers.get(nudge.kind)
        if composer is not None:
            return await composer(nudge, now)
        if nudge.kind == ANSWER_REPLY:
            what, by, _when = nudge.slot.rsplit(":", 2)
            async with self.sessions() as session:
                item = await get_action_item(session, subject_id(nudge.subject))
                incident = await get_incident(session, item.incident_id) if item is not None else None
                thread = await answer_thread(session, incident) if incident is not None else None
            if item is None or incident is None:
                return None
            return dict(
                item_messages.channel_update(ActionItemView.from_row(item, incident), by=by, what=what),
                thread_ts=thread,
            )
        if nudge.kind in ITEM_KINDS:
            async with self.sessions() as session:
                item = await get_action_item(session, subject_id(nudge.subject))
                incident = await get_incident(session, item.incident_id) if item is not None else None
            if item is None or incident is None or item.status in ("done", "wont_do"):
                return None
            view = ActionItemView.from_row(item, incident)
            today = nudge_calendar.local_date(now, (await self.people.get(item.owner_id)).tz)
            overdue_days = (today - item.due).days
            if nudge.kind == "action_item":
                return item_messages.action_item_dm(view, reason=nudge.slot, today=today)
            if nudge.kind == "overdue_commander":
                return item_messages.overdue_to_commander(view, overdue_days=overdue_days)
            return item_messages.overdue_to_channel(view, overdue_days=overdue_days)

        async with self.sessions() as session:
            incident = await get_incident(session, subject_id(nudge.subject))
            items = await incident_action_items(session, subject_id(nudge.subject))
        if incident is None:
            return None
        if nudge.kind == "meeting_unscheduled":
            if incident.meeting_at is not None or incident.resolved_at is None:
                return None
            deadline = nudge_calendar.meeting_deadline(
                incident.resolved_at, incident.severity, requested=incident.meeting_requested
            )
            return meeting.meeting_unscheduled(IncidentView.from_row(incident, deadline=deadline))
        if nudge.kind == "meeting_agenda" and incident.meeting_at is not None:
            timeline = await load_timeline(self.sessions, incident, self.timeline_emojis)
            return meeting.meeting_agenda(
                IncidentView.from_row(incident),
                at=incident.meeting_at,
                timeline_lines=[entry_line(i) for i in timeline],
                action_items=[ActionItemView.from_row(a, incident) for a in items],
                earlier_items=await self.earlier_open_items(incident),
            )
        if nudge.kind == "publication_request" and incident.meeting_at is not None:
            return meeting.publication_request(
                IncidentView.from_row(incident), deadline=incident.meeting_at + timedelta(hours=49)
            )
        if nudge.kind == "review_30d":
            return meeting.review_30_days(
                IncidentView.from_row(incident),
                items=[ActionItemView.from_row(i, incident) for i in items],
                today=now.date(),
            )
        log.warning("nothing to say for nudge %s", nudge.key)
        return None

    async def earlier_open_items(self, incident: Incident) -> list[ActionItemView]:
        """For the agenda's completion review: earlier incidents' open items of this one's cause."""
        return await RepeatFinder(self.sessions).open_items_of_same_cause(incident.id, incident.team_id)

    async def _sent(self, delivered: Delivered) -> None:
        """Mark a nudge Slack has as sent and, in the same transaction, plan what comes next
        (an action item's reminder also remembers its DM, to update in place)."""
        nudge = delivered.nudge
        if nudge.kind == "action_item":
            await self.plan_item(subject_id(nudge.subject), delivered)
        elif nudge.kind == "meeting_unscheduled":
            await self.plan_incident(subject_id(nudge.subject), delivered)
        else:
            async with self.sessions.begin() as session:
                await self._mark_sent(session, delivered)

    async def _mark_sent(self, session: AsyncSession, delivered: Delivered) -> None:
        nudge, now, channel, ts = delivered.nudge, delivered.at, delivered.channel, delivered.ts
        await mark_nudge_sent(session, nudge.id, at=now, channel=channel, ts=ts)
        nudge.status, nudge.sent_at, nudge.message_channel, nudge.message_ts = SENT, now, channel, ts

    async def _release(self, nudge: Nudge, not_before: datetime, error: str) -> None:
        async with self.sessions.begin() as session:
            await release_nudge(session, nudge.id, not_before, error)

    async def _set_status(self, nudge: Nudge, status: str) -> None:
        async with self.sessions.begin() as session:
            await set_nudge_status(session, nudge.id, status)

    async def _fail(self, nudge: Nudge, code: str) -> None:
        """Undeliverable: mark it, and tell the commander (once) so a person can step in."""
        async with self.sessions.begin() as session:
            await mark_nudge_failed(session, nudge.id, code)
        if nudge.kind != "action_item":
            return
        async with self.sessions() as session:
            item = await get_action_item(session, subject_id(nudge.subject))
            incident = await get_incident(session, item.incident_id) if item else None
        if item is None or incident is None:
            return
        try:
            await self.client.chat_postMessage(
                channel=incident.commander_id,
                **item_messages.undeliverable(ActionItemView.from_row(item, incident), error=code),
            )
        except SlackApiError as exc:
            log.error("could not tell the commander about undeliverable nudge %s: %s", nudge.key, error_code(exc))
