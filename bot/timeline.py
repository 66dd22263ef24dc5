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
    apply_message_edit,
    claim_event,
    insert_message,
    is_event_processed,
    mark_message_deleted,
    message_exists,
    prune_processed_events,
    reactions_read_after,
    set_reaction,
)
from storage.models import LIFECYCLE, NOTE, Incident
from storage.timeline import add_timeline_entry, is_on_timeline, promote_message, timeline_rows

log = logging.getLogger("postmortem_bot.timeline")


class NoIncident(Exception):
    """The channel has no incident to add to."""


# Pinned messages fetched from Slack at once, per batch of events.
FETCH_CONCURRENCY = 8


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


ChannelEvent = Posted | Edited | Deleted | Reacted | Ignored


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
        messages never seen), with no transaction open.
        """
        fetched = await self._fetch_pinned(events)
        async with self.sessions.begin() as session:
            now = self.clock.now()
            incidents: dict[tuple[str, str], Incident | None] = {}
            for event in events:
                if not await claim_event(session, event.team_id, event.event_id, now):
                    continue  # a redelivery
                if isinstance(event, Ignored):
                    continue
                key = (event.team_id, event.channel_id)
                if key not in incidents:
                    incidents[key] = await capturing_incident(session, *key)
                incident = incidents[key]
                if incident is None:
                    continue
                if isinstance(event, Posted):
                    await self._posted(session, incident, event)
                elif isinstance(event, Edited):
                    await self._edited(session, incident, event)
                elif isinstance(event, Deleted):
                    row = tombstone_row(event.team_id, incident.id, event.channel_id, event.ts, event.user_id, "event")
                    await mark_message_deleted(session, row)
                elif event.emoji in self.timeline_emojis:
                    await self._reacted(session, incident, event, fetched)

    async def _posted(self, session: AsyncSession, incident: Incident, event: Posted) -> None:
        """Store a human message posted in an incident channel."""
        message = event.message
        if not message.is_human:
            return
        if (
            message.thread_ts is None
            and incident.history_read_ts is not None
            and ts_key(message.ts) < ts_key(incident.history_read_ts)
            and not await message_exists(session, event.team_id, message.channel_id, message.ts)
        ):
            log.info(
                "late event for %s/%s, gone from Slack when it was read back: ignored", message.channel_id, message.ts
            )
            return
        await insert_message(session, message_row(event.team_id, incident.id, message, "event"))

    async def _edited(self, session: AsyncSession, incident: Incident, event: Edited) -> None:
        """A `message_changed`: the new text replaces the old; the first text is kept."""
        message = event.message
        # Unfurls and thread bookkeeping also arrive as message_changed, without `edited`.
        if not message.is_human or message.edited_ts is None:
            return
        row = message_row(event.team_id, incident.id, message, "event")
        row.update(edited_ts=message.edited_ts, original_text=event.previous_text)
        await apply_message_edit(session, row)

    async def _reacted(
        self, session: AsyncSession, incident: Incident, event: Reacted, fetched: Mapping[tuple[str, str], Fetched]
    ) -> None:
        """A timeline emoji added or removed. The timeline follows from the reactions' latest
        state (see storage.intake), so removing the last pushpin takes the message off."""
        team_id, channel_id, message_ts = event.team_id, event.channel_id, event.message_ts
        if await reactions_read_after(session, team_id, channel_id, message_ts, event.event_ts):
            return  # stale: a sync read this message's reactions after it happened
        await set_reaction(
            session,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=message_ts,
            user_id=event.user_id,
            emoji=event.emoji,
            present=event.present,
            event_ts=event.event_ts,
        )
        found = fetched.get((channel_id, message_ts)) if event.present else None
        if found is None:
            return
        if found.message is not None:
            await insert_message(session, message_row(team_id, incident.id, found.message, "fetched"))
        else:
            # Keep the promotion even when Slack would not give the text: the timeline
            # shows a placeholder, and a later event or sync fills it in.
            log.warning("pinned message %s/%s not retrievable (%s)", channel_id, message_ts, found.error)
            placeholder = SlackMessage(channel_id=channel_id, ts=message_ts, user_id=event.item_user, text="")
            await insert_message(session, message_row(team_id, incident.id, placeholder, "missing"))

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
            limit = asyncio.Semaphore(FETCH_CONCURRENCY)

            async def fetch(channel_id: str, ts: str) -> Fetched:
                async with limit:
                    return await self._fetch(channel_id, ts)

            keys = list(wanted)
            found = dict(zip(keys, await asyncio.gather(*(fetch(*key) for key in keys)), strict=True))
            authors |= {f.message.user_id for f in found.values() if f.message is not None}
        if authors:
            await self.people.learn(authors)
        return found

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
