"""The draft timeline: capture of channel messages, promotion by reaction or shortcut, notes.

The service owns each transaction. Every event's effects are written in the same transaction
that records its event_id (a batch of events shares one), so a redelivery is a no-op and a crash leaves nothing half-done.
Slack is asked for things (a message never seen, a user's time zone) before the transaction
opens, never while it holds locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.access import ChannelAccess
from bot.clock import Clock
from bot.nudge_calendar import zone
from bot.payloads import SlackMessage, ts_key, ts_to_datetime
from bot.people import PeopleDirectory
from bot.slack import error_code, fetch_message
from bot.views import IncidentView, TimelineItem
from storage.db import SessionFactory
from storage.incidents import capturing_incident
from storage.intake import (
    apply_message_edits,
    claim_events,
    insert_message,
    insert_messages,
    is_event_processed,
    lock_channels,
    mark_messages_deleted,
    message_exists,
    prune_processed_events,
    set_reactions,
    stored_messages,
)
from storage.models import LIFECYCLE, NOTE, Incident
from storage.timeline import add_timeline_entry, is_on_timeline, promote_message, timeline_rows

log = logging.getLogger("postmortem_bot.timeline")


class NoIncident(Exception):
    """The channel has no incident to add to."""


# Pinned messages fetched from Slack at once, per batch of events; how long a batch may wait
# for them (a 429's Retry-After included); how long fetching pauses after that budget ran out.
FETCH_CONCURRENCY = 8
FETCH_BUDGET_S = 3.0
FETCH_PAUSE_S = 30.0


@dataclass(frozen=True)
class Posted:
    team_id: str
    event_id: str
    message: SlackMessage

    @property
    def channel_id(self) -> str:
        return self.message.channel_id


@dataclass(frozen=True)
class Edited:
    team_id: str
    event_id: str
    message: SlackMessage
    previous_text: str | None

    @property
    def channel_id(self) -> str:
        return self.message.channel_id


@dataclass(frozen=True)
class Deleted:
    team_id: str
    event_id: str
    channel_id: str
    ts: str
    user_id: str | None


@dataclass(frozen=True)
class Reacted:
    """reaction_added (present) or reaction_removed, on a message."""

    team_id: str
    event_id: str
    channel_id: str
    message_ts: str
    user_id: str
    emoji: str
    present: bool
    event_ts: str
    item_user: str | None = None


@dataclass(frozen=True)
class Ignored:
    """An event with nothing for the timeline, recorded so its redelivery is cheap too."""

    team_id: str
    event_id: str


# An event that writes to a channel's timeline rows, and any channel event.
LiveEvent = Posted | Edited | Deleted | Reacted
ChannelEvent = LiveEvent | Ignored


@dataclass(frozen=True)
class Fetched:
    """A message asked of Slack: the message, or why Slack would not give it."""

    message: SlackMessage | None
    error: str | None


@dataclass(frozen=True)
class PromoteOutcome:
    incident: IncidentView | None
    added: bool


def message_row(team_id: str, incident_id: int, message: SlackMessage, source: str) -> dict[str, Any]:
    return {
        "team_id": team_id,
        "channel_id": message.channel_id,
        "ts": message.ts,
        "incident_id": incident_id,
        "user_id": message.user_id,
        "text": message.text,
        "thread_ts": message.thread_ts,
        "file_names": list(message.file_names),
        "posted_at": message.posted_at,
        # Known for a message fetched after an edit: an older edit arriving late must lose.
        "edited_ts": message.edited_ts,
        "deleted": False,
        "source": source,
    }


def tombstone_row(
    team_id: str, incident_id: int, channel_id: str, ts: str, user_id: str | None, source: str
) -> dict[str, Any]:
    """The row a delete leaves, whether or not the message itself was ever stored."""
    return {
        "team_id": team_id,
        "channel_id": channel_id,
        "ts": ts,
        "incident_id": incident_id,
        "user_id": user_id,
        "text": None,
        "file_names": [],
        "posted_at": ts_to_datetime(ts),
        "source": source,
    }


def _touches(event: LiveEvent) -> tuple[str, ...]:
    """The row an event writes: a message, or one person's reaction on one."""
    if isinstance(event, Posted | Edited):
        return (event.message.ts,)
    if isinstance(event, Deleted):
        return (event.ts,)
    if isinstance(event, Reacted):
        return (event.message_ts, event.user_id, event.emoji)
    return ()


def _runs(live: list[tuple[LiveEvent, Incident]]) -> list[list[tuple[LiveEvent, Incident]]]:
    """Consecutive events of one kind in one channel, cut where a row would be written twice:
    each run is one statement, and the runs keep the events' order."""
    runs: list[list[tuple[LiveEvent, Incident]]] = []
    touched: set[tuple[str, ...]] = set()
    for event, incident in live:
        last = runs[-1][-1][0] if runs else None
        key = _touches(event)
        if last is None or type(last) is not type(event) or last.channel_id != event.channel_id or key in touched:
            runs.append([])
            touched = set()
        runs[-1].append((event, incident))
        touched.add(key)
    return runs


def _unique_messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per message (a message pinned twice in a batch was fetched once)."""
    return list({(row["channel_id"], row["ts"]): row for row in rows}.values())


class TimelineService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        timeline_emojis: tuple[str, ...],
        people: PeopleDirectory,
        access: ChannelAccess,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.timeline_emojis = timeline_emojis
        self._fetch_paused_until = 0.0
        self.people = people
        self.access = access

    # --- intake of channel events -------------------------------------------------------

    async def skip_event(self, team_id: str, event_id: str) -> None:
        """Record an event that has nothing for the timeline, so its redelivery is cheap too."""
        await self.apply([Ignored(team_id, event_id)])

    async def prune_event_log(self, retention: timedelta) -> int:
        async with self.sessions.begin() as session:
            return await prune_processed_events(session, self.clock.now() - retention)

    async def apply(self, events: Sequence[ChannelEvent]) -> None:
        """Apply channel events in the order given, all in one transaction.

        Each event's effects are written with its event id, so a redelivered one changes
        nothing and a crash leaves none of them. Slack is asked first (the text of pinned
        messages never seen), with no transaction open. Consecutive events of one kind are
        written by one statement executed for all their rows, in order; a run is cut where
        a row would touch the same message or reaction twice.
        """
        fetched = await self._fetch_pinned(events)
        async with self.sessions.begin() as session:
            await lock_channels(session, {(e.team_id, e.channel_id) for e in events if not isinstance(e, Ignored)})
            claimed = await claim_events(session, [(e.team_id, e.event_id) for e in events], self.clock.now())
            incidents: dict[tuple[str, str], Incident | None] = {}
            live: list[tuple[LiveEvent, Incident]] = []
            for event in events:
                if (event.team_id, event.event_id) not in claimed or isinstance(event, Ignored):
                    continue  # a redelivery, or nothing for the timeline
                key = (event.team_id, event.channel_id)
                if key not in incidents:
                    incidents[key] = await capturing_incident(session, *key)
                incident = incidents[key]
                if incident is not None:
                    live.append((event, incident))
            for run in _runs(live):
                await self._write_run(session, run, fetched)

    async def _write_run(
        self,
        session: AsyncSession,
        run: list[tuple[LiveEvent, Incident]],
        fetched: Mapping[tuple[str, str], Fetched],
    ) -> None:
        """Write a run of events of one kind, in one channel."""
        first = run[0][0]
        if isinstance(first, Posted):
            await insert_messages(session, await self._posted_rows(session, run))
        elif isinstance(first, Edited):
            rows = []
            for event, incident in run:
                assert isinstance(event, Edited)
                # Unfurls and thread bookkeeping also arrive as message_changed, without `edited`.
                if event.message.is_human and event.message.edited_ts is not None:
                    row = message_row(event.team_id, incident.id, event.message, "event")
                    row.update(edited_ts=event.message.edited_ts, original_text=event.previous_text)
                    rows.append(row)
            await apply_message_edits(session, rows)
        elif isinstance(first, Deleted):
            await mark_messages_deleted(
                session,
                [
                    tombstone_row(e.team_id, i.id, e.channel_id, e.ts, e.user_id, "event")
                    for e, i in run
                    if isinstance(e, Deleted)
                ],
            )
        elif isinstance(first, Reacted):
            await self._write_reactions(session, run, fetched)

    async def _posted_rows(self, session: AsyncSession, run: list[tuple[LiveEvent, Incident]]) -> list[dict[str, Any]]:
        """Rows for human messages posted in an incident channel. A top-level message older
        than the last read of the channel's history, and not stored by it, was deleted
        before the read: its late event must not bring it back."""
        first, incident = run[0]
        read_ts = incident.history_read_ts
        late = [
            e.message.ts
            for e, _ in run
            if isinstance(e, Posted)
            and e.message.thread_ts is None
            and read_ts is not None
            and ts_key(e.message.ts) < ts_key(read_ts)
        ]
        stored = await stored_messages(session, first.team_id, first.channel_id, late) if late else {}
        rows = []
        for event, _ in run:
            assert isinstance(event, Posted)
            message = event.message
            if not message.is_human:
                continue
            if message.ts in late and message.ts not in stored:
                log.info(
                    "late event for %s/%s, gone from Slack when it was read back: ignored", first.channel_id, message.ts
                )
                continue
            rows.append(message_row(event.team_id, incident.id, message, "event"))
        return rows

    async def _write_reactions(
        self,
        session: AsyncSession,
        run: list[tuple[LiveEvent, Incident]],
        fetched: Mapping[tuple[str, str], Fetched],
    ) -> None:
        """Timeline emojis added or removed. The timeline follows from the reactions' latest
        state (see storage.intake), so removing the last pushpin takes the message off."""
        first, incident = run[0]
        reacted = [e for e, _ in run if isinstance(e, Reacted) and e.emoji in self.timeline_emojis]
        if not reacted:
            return
        read = await stored_messages(session, first.team_id, first.channel_id, [e.message_ts for e in reacted])
        rows, pinned = [], []
        for event in reacted:
            read_ts = read.get(event.message_ts)
            if read_ts is not None and read_ts > event.event_ts:
                continue  # stale: a sync read this message's reactions after it happened
            rows.append(
                {
                    "team_id": event.team_id,
                    "channel_id": event.channel_id,
                    "message_ts": event.message_ts,
                    "user_id": event.user_id,
                    "emoji": event.emoji,
                    "present": event.present,
                    "event_ts": event.event_ts,
                }
            )
            found = fetched.get((event.channel_id, event.message_ts)) if event.present else None
            if found is None:
                continue
            if found.message is not None:
                pinned.append(message_row(event.team_id, incident.id, found.message, "fetched"))
            else:
                # Keep the promotion even when Slack would not give the text: the timeline
                # shows a placeholder, and a later event or sync fills it in.
                log.warning(
                    "pinned message %s/%s not retrievable (%s)", event.channel_id, event.message_ts, found.error
                )
                placeholder = SlackMessage(event.channel_id, event.message_ts, event.item_user, "")
                pinned.append(message_row(event.team_id, incident.id, placeholder, "missing"))
        await set_reactions(session, rows)
        await insert_messages(session, _unique_messages(pinned))

    async def _fetch_pinned(self, events: Sequence[ChannelEvent]) -> dict[tuple[str, str], Fetched]:
        """The messages that new pushpins point at and the database lacks, from Slack; and
        the pinned messages' authors learnt, so documents name them even with Slack away."""
        posted = {(e.channel_id, e.message.ts) for e in events if isinstance(e, Posted)}
        wanted: dict[tuple[str, str], Reacted] = {}
        authors: set[str | None] = set()
        async with self.sessions() as session:
            incidents: dict[tuple[str, str], bool] = {}
            for event in events:
                if not isinstance(event, Reacted) or not event.present or event.emoji not in self.timeline_emojis:
                    continue
                channel = (event.team_id, event.channel_id)
                if channel not in incidents:
                    incidents[channel] = await capturing_incident(session, *channel) is not None
                if not incidents[channel]:
                    continue
                authors.add(event.item_user)
                key = (event.channel_id, event.message_ts)
                if key in wanted or key in posted:
                    continue
                if not await is_event_processed(session, event.team_id, event.event_id) and not await message_exists(
                    session, event.team_id, event.channel_id, event.message_ts
                ):
                    wanted[key] = event
        found: dict[tuple[str, str], Fetched] = {}
        if wanted:
            found = await self._fetch_within_budget(list(wanted))
            authors |= {f.message.user_id for f in found.values() if f.message is not None}
        if authors:
            await self.people.learn(authors)
        return found

    async def _fetch_within_budget(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Fetched]:
        """Fetch pinned messages, waiting out Slack's rate limits for FETCH_BUDGET_S at most.

        Every stored event waits behind this batch, so a Slack that is slow or rate-limiting
        (conversations.history is Tier 3) must not hold intake up: past the budget the rest
        become placeholders, and fetching pauses for a while. A placeholder is filled by the
        message's own event or by the next sync (at the latest, the one before resolving).
        """
        if monotonic() < self._fetch_paused_until:
            return dict.fromkeys(keys, Fetched(None, "fetching paused: Slack was slow"))
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def fetch(channel_id: str, ts: str) -> Fetched:
            async with limit:
                return await self._fetch(channel_id, ts)

        tasks = {key: asyncio.ensure_future(fetch(*key)) for key in keys}
        done, pending = await asyncio.wait(tasks.values(), timeout=FETCH_BUDGET_S)
        for task in pending:
            task.cancel()
        if pending:
            self._fetch_paused_until = monotonic() + FETCH_PAUSE_S
            log.warning(
                "Slack did not give %d pinned message(s) within %.0f s: placeholders for now, fetching paused %.0f s",
                len(pending),
                FETCH_BUDGET_S,
                FETCH_PAUSE_S,
            )
        return {
            key: task.result() if task in done else Fetched(None, "Slack was too slow") for key, task in tasks.items()
        }

    async def _fetch(self, channel_id: str, ts: str) -> Fetched:
        try:
            payload = await fetch_message(self.client, channel_id, ts)
        except SlackApiError as exc:
            return Fetched(None, error_code(exc))
        if payload is None:
            return Fetched(None, "message_not_found")
        return Fetched(SlackMessage.parse(channel_id, payload), None)

    async def promote_by_shortcut(
        self, team_id: str, channel_id: str, message: Mapping[str, Any], user_id: str
    ) -> PromoteOutcome:
        """The "Add to timeline" shortcut: the payload carries the whole message, no fetch needed.

        Raises AccessDenied for someone outside a private channel: the payload carries the
        message, but the timeline is still theirs only to read and change as members."""
        parsed = SlackMessage.parse(channel_id, message)
        await self.access.require_member(channel_id, user_id)
        async with self.sessions.begin() as session:
            incident = await capturing_incident(session, team_id, channel_id)
            if incident is None:
                return PromoteOutcome(incident=None, added=False)
            already = await is_on_timeline(session, incident.id, self.timeline_emojis, parsed.ts)
            await insert_message(session, message_row(team_id, incident.id, parsed, "fetched"))
            await promote_message(session, team_id, channel_id, parsed.ts, user_id)
        await self.people.learn([parsed.user_id])
        return PromoteOutcome(incident=IncidentView.from_row(incident), added=not already)

    # --- manual and lifecycle entries ----------------------------------------------------

    async def add_note(self, team_id: str, channel_id: str, user_id: str, text: str, at: time | None) -> TimelineItem:
        """A manual entry, now or at `at` today in the author's time zone.

        A time later than now is taken as yesterday's: a note written at 00:10 about 23:50
        means the evening before, not tonight.
        """
        await self.access.require_member(channel_id, user_id)
        now = self.clock.now()
        occurred_at = now
        if at is not None:
            local_zone = zone((await self.people.get(user_id)).tz)
            local_now = now.astimezone(local_zone)
            candidate = datetime.combine(local_now.date(), at, tzinfo=local_zone)
            if candidate > local_now:
                candidate -= timedelta(days=1)
            occurred_at = candidate.astimezone(now.tzinfo)
        async with self.sessions.begin() as session:
            incident = await capturing_incident(session, team_id, channel_id)
            if incident is None:
                raise NoIncident(channel_id)
            entry = await add_timeline_entry(
                session,
                team_id=team_id,
                incident_id=incident.id,
                kind=NOTE,
                occurred_at=occurred_at,
                user_id=user_id,
                text=text,
            )
        await self.people.learn([user_id])
        return TimelineItem.from_entry(entry)

    # --- reading -------------------------------------------------------------------------

    async def items(self, incident: IncidentView) -> list[TimelineItem]:
        return await load_timeline(self.sessions, incident, self.timeline_emojis)

    async def readable_incident(self, team_id: str, channel_id: str, user_id: str) -> IncidentView | None:
        """The channel's incident for `user_id` to read or act on; AccessDenied outside a private channel."""
        await self.access.require_member(channel_id, user_id)
        return await self.current_incident(team_id, channel_id)

    async def current_incident(self, team_id: str, channel_id: str) -> IncidentView | None:
        async with self.sessions() as session:
            incident = await capturing_incident(session, team_id, channel_id)
        return IncidentView.from_row(incident) if incident is not None else None


async def load_timeline(
    sessions: SessionFactory, incident: Incident | IncidentView, emojis: tuple[str, ...]
) -> list[TimelineItem]:
    """The timeline of `incident`, in the order things happened."""
    async with sessions() as session:
        messages, entries = await timeline_rows(session, incident.id, emojis)
    items = [TimelineItem.from_message(m) for m in messages] + [TimelineItem.from_entry(e) for e in entries]
    # Lifecycle first among simultaneous entries: "declared" precedes what it declares.
    order = {LIFECYCLE: 0, NOTE: 1, "message": 2}
    items.sort(key=lambda i: (i.occurred_at, order.get(i.kind, 3), i.ts or ""))
    return items
