"""The sweep: send what is due, exactly once, in batches.

A sweep claims due nudges a batch at a time (one statement; FOR UPDATE SKIP LOCKED on
PostgreSQL, so replicas never claim the same row), loads what the batch needs in a few
queries (its items, incidents, and the people it names or writes to), composes every
message without a query, sends them concurrently (SEND_CONCURRENCY people at once, each
person's or channel's messages one after another, waiting out Slack's 429 Retry-After
through the client's retry handler), then marks what Slack accepted as sent and plans
each subject's next nudge, for the whole batch in one transaction.

Exactly once: a nudge is marked sent only after Slack said ok, and every message carries
its nudge's key in Slack message metadata. A claim left behind by a crash (between a send
and its batch's mark) is recovered after a lease by asking Slack whether the message
exists: if it does, the row is marked sent; if not, it is sent now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot import nudge_calendar
from bot.metrics import NUDGES_SENT, SWEEP_DUE_BACKLOG, SWEEP_SECONDS
from bot.nudges import (
    ANSWER_REPLY,
    CLAIM_LEASE,
    CLOCK_SKEW,
    ITEM_KINDS,
    MAX_ATTEMPTS,
    NUDGE_EVENT_TYPE,
    RETRY_BACKOFF,
    SEND_CONCURRENCY,
    STALE_AFTER,
    SWEEP_BATCH,
    UNREACHABLE,
    Delivered,
    SweepReport,
    answer_thread,
    item_subject,
    subject_id,
)
from bot.payloads import datetime_to_ts
from bot.people import Person
from bot.slack import error_code, find_by_metadata
from bot.timeline import load_timeline
from bot.ui import item_messages, meeting
from bot.ui.timeline import entry_line
from bot.views import ActionItemView, IncidentView
from storage.action_items import action_items_by_id, get_action_item, incident_action_items, remember_item_dms
from storage.incidents import get_incident, incidents_by_id
from storage.models import CANCELLED, ActionItem, Incident, Nudge
from storage.nudges import (
    cancel_pending_of_subjects,
    claim_due_nudges,
    count_due_unsent,
    mark_nudge_failed,
    mark_nudges_sent,
    pending_subjects_due_before,
    put_nudges,
    release_nudge,
    set_nudge_status,
    take_over_claims,
)

if TYPE_CHECKING:
    from bot.nudges import NudgeService

log = logging.getLogger("postmortem_bot.sweep")


@dataclass
class Batch:
    """What a batch of nudges needs to be composed, read once for the whole batch."""

    items: dict[int, ActionItem] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    threads: dict[int, str | None] = field(default_factory=dict)  # incident id -> where answers go
    people: dict[str, Person] = field(default_factory=dict)

    def item_and_incident(self, nudge: Nudge) -> tuple[ActionItem | None, Incident | None]:
        item = self.items.get(subject_id(nudge.subject))
        return item, (self.incidents.get(item.incident_id) if item is not None else None)


class NudgeSweep:
    """One sweep's worth of work for a NudgeService: its collaborators, its planning."""

    def __init__(self, nudges: NudgeService) -> None:
        self.nudges = nudges
        self.sessions = nudges.sessions
        self.client = nudges.client
        self.clock = nudges.clock
        self.people = nudges.people
        self.hours = nudges.hours
        self.worker_id = nudges.worker_id

    async def sweep(self, now: datetime, limit: int = SWEEP_BATCH) -> SweepReport:
        """Send what is due at `now`, once. Safe to run in several processes at once."""
        started = time.perf_counter()
        report = SweepReport()
        try:
            for plan in self.nudges.planners:  # other services' kinds (the quarterly review)
                await plan(now)
            resend = await self._recover(await self._stale_claims(now), now, report)
            if resend:
                await self._deliver(resend, now, report)
            await self._replan_overdue(now)
            while True:
                batch = await self._claim(now, limit)
                if batch:
                    await self._deliver(batch, now, report)
                if len(batch) < limit:
                    break
            async with self.sessions() as session:
                SWEEP_DUE_BACKLOG.set(await count_due_unsent(session, now))
            return report
        finally:
            SWEEP_SECONDS.observe(time.perf_counter() - started)

    async def _replan_overdue(self, now: datetime) -> None:
        """After downtime, an action item's pending reminder may name a slot whose day has
        gone: plan it again, so one current reminder goes out instead of a stale one first."""
        async with self.sessions() as session:
            subjects = await pending_subjects_due_before(session, "action_item", now - STALE_AFTER)
        for subject in subjects:
            await self.nudges.plan_item(subject_id(subject))

    async def _claim(self, now: datetime, limit: int) -> list[Nudge]:
        async with self.sessions.begin() as session:
            return await claim_due_nudges(session, now, limit, self.worker_id)

    async def _stale_claims(self, now: datetime) -> list[tuple[Nudge, datetime]]:
        """Claims past their lease, taken over at `now`; each with the time it was claimed."""
        async with self.sessions.begin() as session:
            return await take_over_claims(session, now - CLAIM_LEASE, now, self.worker_id)

    # --- recovery ------------------------------------------------------------------------

    async def _recover(self, stale: list[tuple[Nudge, datetime]], now: datetime, report: SweepReport) -> list[Nudge]:
        """Crashed sweepers' claims: those Slack has are marked sent now; the rest are
        returned, to be sent. Each recipient's conversation is read once for all its claims.

        Searched from the earliest of their nudges' times (no sweeper sends before it, and
        claims never move it) and the claims being recovered, less CLOCK_SKEW. Not from the
        recovery's own time: after a crash and a longer downtime, or a recovery itself killed
        (it re-claims at its own time), the message is older by any amount.
        """
        by_recipient: dict[str, list[tuple[Nudge, datetime]]] = defaultdict(list)
        for nudge, claimed_at in stale:
            by_recipient[nudge.recipient].append((nudge, claimed_at))
        resend: list[Nudge] = []
        for recipient, claims in by_recipient.items():
            since = min(min(n.not_before, claimed_at) for n, claimed_at in claims) - CLOCK_SKEW
            try:
                found = await find_by_metadata(
                    self.client, recipient, NUDGE_EVENT_TYPE, [n.key for n, _ in claims], oldest=datetime_to_ts(since)
                )
            except SlackApiError as exc:
                code = error_code(exc)
                for nudge, _ in claims:
                    if code in UNREACHABLE:
                        await self._fail(nudge, code)
                        report.failed.append(f"{nudge.key} ({code})")
                    else:
                        log.warning("cannot check Slack for %s (%s); will retry", nudge.key, code)
                        await self._release(nudge, now, code)
                continue
            await self._sent([Delivered(n, now, *found[n.key]) for n, _ in claims if n.key in found])
            report.recovered += [n.key for n, _ in claims if n.key in found]
            resend += [n for n, _ in claims if n.key not in found]
        return resend

    # --- a batch: load, compose, send, mark ------------------------------------------------

    async def _load(self, nudges: list[Nudge]) -> Batch:
        """The items, incidents and people a batch needs: a few queries, whatever its size.

        The session is closed before Slack is asked about anyone: on SQLite an open session
        holds the write lock, so no Slack call or second session may happen in it.
        """
        batch = Batch()
        item_ids = {subject_id(n.subject) for n in nudges if n.kind in ITEM_KINDS or n.kind == ANSWER_REPLY}
        async with self.sessions() as session:
            batch.items = await action_items_by_id(session, item_ids)
            batch.incidents = await incidents_by_id(session, {i.incident_id for i in batch.items.values()})
            for n in nudges:
                if n.kind != ANSWER_REPLY:
                    continue
                item, incident = batch.item_and_incident(n)
                if incident is not None and incident.id not in batch.threads:
                    batch.threads[incident.id] = await answer_thread(session, incident)
        people = {n.recipient for n in nudges if n.recipient.startswith(("U", "W"))}
        people |= {i.owner_id for i in batch.items.values()}
        batch.people = await self.people.for_sending(people)
        return batch

    async def _deliver(self, nudges: list[Nudge], now: datetime, report: SweepReport) -> None:
        batch = await self._load(nudges)
        outgoing: list[tuple[Nudge, dict[str, Any]]] = []
        for nudge in nudges:
            unreachable = self._unreachable(nudge.recipient, batch)
            if unreachable:
                await self._fail(nudge, unreachable)
                report.failed.append(f"{nudge.key} ({unreachable})")
                continue
            try:
                message = await self._compose(nudge, now, batch)
            except Exception as exc:  # never let one nudge stop the others
                log.exception("nudge %s could not be composed", nudge.key)
                await self._release(nudge, now + RETRY_BACKOFF, type(exc).__name__)
                report.retried.append(f"{nudge.key} ({type(exc).__name__})")
                continue
            if message is None:  # the subject moved on (done, scheduled, deleted): nothing to say
                await self._set_status(nudge, CANCELLED)
                continue
            outgoing.append((nudge, message))
        results = await self._send_all(outgoing, now)
        await self._sent([r for r in results if isinstance(r, Delivered)])
        for result in results:
            if isinstance(result, Delivered):
                report.sent.append(result.nudge.key)
                NUDGES_SENT.labels(kind=result.nudge.kind).inc()
            else:
                await self._refused(*result, now=now, report=report)

    def _unreachable(self, recipient: str, batch: Batch) -> str | None:
        """Why a person cannot be nudged, or None. Slack still delivers to a deactivated
        user's existing DM, so the bot asks who they are instead of trusting the post."""
        person = batch.people.get(recipient)
        if person is None:  # a channel
            return None
        if person.deleted:
            return "user_disabled"
        if person.is_bot:
            return "cannot_dm_bot"
        return None

    async def _send_all(
        self, outgoing: list[tuple[Nudge, dict[str, Any]]], now: datetime
    ) -> list[Delivered | tuple[Nudge, BaseException]]:
        """Post every message, SEND_CONCURRENCY recipients at a time; one recipient's (a DM,
        or a channel: Slack allows about one post a second per channel) in order."""
        by_recipient: dict[str, list[tuple[Nudge, dict[str, Any]]]] = defaultdict(list)
        for nudge, message in outgoing:
            by_recipient[nudge.recipient].append((nudge, message))
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        results: list[Delivered | tuple[Nudge, BaseException]] = []

        async def send(queue: list[tuple[Nudge, dict[str, Any]]]) -> None:
            async with gate:
                for nudge, message in queue:
                    try:
                        posted = await self.client.chat_postMessage(
                            channel=nudge.recipient,
                            metadata={"event_type": NUDGE_EVENT_TYPE, "event_payload": {"key": nudge.key}},
                            **message,
                        )
                    except Exception as exc:
                        results.append((nudge, exc))
                    else:
                        results.append(Delivered(nudge, now, posted["channel"], posted["ts"]))

        await asyncio.gather(*(send(queue) for queue in by_recipient.values()))
        return results

    async def _refused(self, nudge: Nudge, exc: BaseException, *, now: datetime, report: SweepReport) -> None:
        """A post that did not go through: given up, tried again later, or left to recovery."""
        if not isinstance(exc, SlackApiError):
            # A timeout or a cut connection says nothing of whether Slack posted it. The row
            # stays claimed: after the lease, recovery looks for its key in Slack before
            # sending, so an uncertain post is never sent twice.
            log.warning("nudge %s: outcome unknown (%s); Slack is checked after the lease", nudge.key, error_code(exc))
            report.retried.append(f"{nudge.key} ({error_code(exc)}, checked after the lease)")
            return
        code = error_code(exc)
        if code in UNREACHABLE and nudge.recipient.startswith(("U", "W")):
            # What the bot kept of them may be older than Slack's word: ask why.
            code = (
                self._unreachable(
                    nudge.recipient, Batch(people={nudge.recipient: await self.people.refresh(nudge.recipient)})
                )
                or code
            )
        if code in UNREACHABLE or nudge.attempts >= MAX_ATTEMPTS:
            await self._fail(nudge, code)
            report.failed.append(f"{nudge.key} ({code})")
        else:
            await self._release(nudge, now + RETRY_BACKOFF, code)
            report.retried.append(f"{nudge.key} ({code})")

    async def _compose(self, nudge: Nudge, now: datetime, batch: Batch) -> dict[str, Any] | None:
        """The message for `nudge`, from the subject's state as loaded; None when it has nothing to say."""
        composer = self.nudges.composers.get(nudge.kind)
        if composer is not None:
            return await composer(nudge, now)
        if nudge.kind == ANSWER_REPLY:
            what, by, _when = nudge.slot.rsplit(":", 2)
            item, incident = batch.item_and_incident(nudge)
            if item is None or incident is None:
                return None
            return dict(
                item_messages.channel_update(ActionItemView.from_row(item, incident), by=by, what=what),
                thread_ts=batch.threads.get(incident.id),
            )
        if nudge.kind in ITEM_KINDS:
            item, incident = batch.item_and_incident(nudge)
            if item is None or incident is None or item.status in ("done", "wont_do"):
                return None
            view = ActionItemView.from_row(item, incident)
            owner = batch.people.get(item.owner_id)
            today = nudge_calendar.local_date(now, owner.tz if owner else None)
            overdue_days = (today - item.due).days
            if nudge.kind == "action_item":
                return item_messages.action_item_dm(view, reason=nudge.slot, today=today)
            if nudge.kind == "overdue_commander":
                return item_messages.overdue_to_commander(view, overdue_days=overdue_days)
            return item_messages.overdue_to_channel(view, overdue_days=overdue_days)
        return await self._compose_meeting(nudge, now)

    async def _compose_meeting(self, nudge: Nudge, now: datetime) -> dict[str, Any] | None:
        """An incident's meeting nudges: a few per incident, read one by one."""
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
            timeline = await load_timeline(self.sessions, incident, self.nudges.timeline_emojis)
            return meeting.meeting_agenda(
                IncidentView.from_row(incident),
                at=incident.meeting_at,
                timeline_lines=[entry_line(i) for i in timeline],
                action_items=[ActionItemView.from_row(a, incident) for a in items],
                earlier_items=await self.nudges.earlier_open_items(incident),
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

    async def _sent(self, delivered: list[Delivered]) -> None:
        """Mark nudges Slack has as sent and, in the same transaction, plan what comes next
        for their action items (each reminder also remembers its DM, to update in place):
        a crash leaves the batch's marks and plans all done or none (then its claims are
        recovered from Slack), never a sent reminder with none planned after it."""
        if not delivered:
            return
        meetings = [d for d in delivered if d.nudge.kind == "meeting_unscheduled"]
        marks = [d for d in delivered if d.nudge.kind != "meeting_unscheduled"]
        reminders = {subject_id(d.nudge.subject): d for d in marks if d.nudge.kind == "action_item"}
        # Who owns them, read before the transaction: no Slack call may happen inside it.
        async with self.sessions() as session:
            owners = {i.owner_id for i in (await action_items_by_id(session, reminders)).values()}
        people = await self.people.for_sending(owners)
        later: list[int] = []
        now = self.clock.now()
        async with self.sessions.begin() as session:
            await mark_nudges_sent(
                session, [{"id": d.nudge.id, "at": d.at, "channel": d.channel, "ts": d.ts} for d in marks]
            )
            await remember_item_dms(session, [(item_id, d.channel, d.ts) for item_id, d in reminders.items()])
            # Re-read under lock: an answer may have landed since the batch was composed, and
            # the latest state wins (a "done" plans nothing).
            items = await action_items_by_id(session, reminders, lock=True)
            await cancel_pending_of_subjects(session, [item_subject(i) for i in reminders], ITEM_KINDS)
            incidents = await incidents_by_id(session, {i.incident_id for i in items.values()})
            rows: list[dict[str, Any]] = []
            for item_id, d in reminders.items():
                item = items.get(item_id)
                if item is None or item.status in ("done", "wont_do"):
                    continue
                owner = people.get(item.owner_id)
                if owner is None:  # a new owner since the read above: planned on its own below
                    later.append(item_id)
                    continue
                planned = nudge_calendar.next_action_item_nudge(
                    due=item.due,
                    status=item.status,
                    assigned_notified=True,
                    last_slot=d.nudge.slot,
                    last_sent_at=d.at,
                    snoozed_until=item.snoozed_until,
                    now=now,
                    tz=owner.tz,
                    hours=self.hours,
                )
                if planned is not None:
                    rows += self.nudges.item_nudge_rows(item, incidents[item.incident_id], planned)
            await put_nudges(session, rows, now=now)
        for item_id in later:
            await self.nudges.plan_item(item_id)
        for d in meetings:
            await self.nudges.plan_incident(subject_id(d.nudge.subject), d)
        for d in delivered:
            nudge = d.nudge
            nudge.status, nudge.sent_at, nudge.message_channel, nudge.message_ts = "sent", d.at, d.channel, d.ts

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
