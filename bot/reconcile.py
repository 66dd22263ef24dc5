"""Reconciliation: compare an incident's stored messages with Slack and repair what was missed.

Slack does not redeliver an event it got an ack for, nor one sent while the bot was away past
its retries. So on start-up, before resolving and on `/postmortem sync`, the bot reads the
channel back (conversations.history since the incident began, conversations.replies for every
thread, reactions as they come with the messages) and repairs messages, edits, deletes and
timeline reactions.

The rules that keep a repair from undoing newer news:
- Everything is read from Slack first, with no transaction open; the repairs are then
  written in one transaction with the same idempotent writes intake uses.
- A message is taken as deleted only if it was stored *before* the read began and Slack no
  longer lists it (a message stored meanwhile may simply be newer than the read).
- A reaction observed by the read is written with the read's time as its event_ts, under the
  same last-writer-wins rule as events: a later reaction event still wins, an older one loses.
  The read's time is also kept on each message whose reactions Slack listed in full, so a
  stale event about someone the read did not list (added and removed while the bot was away,
  delivered late) loses too.
- Where Slack's answer is incomplete (a thread it would not return, a reaction list it
  truncated), nothing is deleted or removed on its account.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.payloads import TS_PATTERN, MalformedPayload, SlackMessage, datetime_to_ts, ts_key
from bot.slack import SLACK_FAILURES, error_code
from bot.timeline import NoIncident, message_row, tombstone_row
from storage.db import SessionFactory
from storage.incidents import active_incidents, capturing_incident
from storage.intake import (
    apply_message_edit,
    channel_reactions,
    incident_messages,
    insert_message,
    mark_message_deleted,
    mark_reactions_read,
    set_reaction,
)
from storage.models import Incident, Message

log = logging.getLogger("postmortem_bot.reconcile")

PAGE_SIZE = 200  # Slack's advice for paginated reads
# conversations.history and conversations.replies are Tier 3: 50+ calls a minute per workspace.
TIER3_PER_MINUTE = 50


class CallPacer:
    """Spaces calls to one rate-limited method: a burst up to `burst`, then `per_minute`.

    slack_sdk honours Retry-After once Slack says 429, but has no pacing of its own; pacing
    keeps a start-up sync of many incidents from running into the limit in the first place.
    """

    def __init__(
        self,
        per_minute: float = TIER3_PER_MINUTE,
        # A minute's allowance up front: a sync before resolving (threads and all) fills the
        # modal without waiting; only a long start-up sync of many incidents is spaced out.
        burst: int = TIER3_PER_MINUTE,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = 60.0 / per_minute
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) / self.interval)
            self._updated = now
            if self._tokens < 1:
                delay = (1 - self._tokens) * self.interval
                await self._sleep(delay)
                self._tokens = 1.0
                self._updated = self._monotonic()
            self._tokens -= 1


@dataclass
class SyncReport:
    """What one reconciliation found and repaired."""

    incident_id: int
    channel_id: str
    messages_added: int = 0
    edits: int = 0
    deletes: int = 0
    pins_added: int = 0
    pins_removed: int = 0
    slack_calls: int = 0
    # Parts Slack would not give (threads, truncated reaction lists): repaired as far as seen.
    unread: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return self.messages_added + self.edits + self.deletes + self.pins_added + self.pins_removed

    def summary(self) -> str:
        """Plain words for people and logs."""
        if not self.repaired:
            found = "The timeline matches Slack: nothing was missing."
        else:
            parts = [
                _count(self.messages_added, "missed message", "missed messages"),
                _count(self.edits, "edit", "edits"),
                _count(self.deletes, "delete", "deletes"),
                _count(self.pins_added, "timeline reaction added", "timeline reactions added"),
                _count(self.pins_removed, "timeline reaction removed", "timeline reactions removed"),
            ]
            found = "Repaired from Slack: " + ", ".join(p for p in parts if p) + "."
        if self.unread:
            found += f" Slack would not give {len(self.unread)} part(s) of the channel; run it again later."
        return found


def _count(n: int, one: str, many: str) -> str:
    if not n:
        return ""
    return f"{n} {one if n == 1 else many}"


@dataclass
class _SlackView:
    """The channel as Slack showed it during one read."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> raw message
    thread_complete: dict[str, bool] = field(default_factory=dict)  # parent ts -> fully read
    newest_ts: str = "0.000000"
    newest_top_level_ts: str | None = None  # of conversations.history, read to the end

    def see(self, message: dict[str, Any], top_level: bool = False) -> None:
        ts = message.get("ts")
        if not isinstance(ts, str) or not TS_PATTERN.match(ts):
            return
        self.messages[ts] = message
        if ts_key(ts) > ts_key(self.newest_ts):
            self.newest_ts = ts
        if top_level and (self.newest_top_level_ts is None or ts_key(ts) > ts_key(self.newest_top_level_ts)):
            self.newest_top_level_ts = ts


class ReconcileService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        timeline_emojis: tuple[str, ...],
        pacer: CallPacer,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.timeline_emojis = timeline_emojis
        self.pacer = pacer

    async def sync_channel(self, team_id: str, channel_id: str) -> SyncReport:
        """`/postmortem sync`: reconcile the channel's current incident."""
        async with self.sessions() as session:
            incident = await capturing_incident(session, team_id, channel_id)
        if incident is None:
            raise NoIncident(channel_id)
        return await self.sync_incident(incident)

    async def sync_active(self) -> list[SyncReport]:
        """Start-up: reconcile every active incident, one after another (they share the limits)."""
        async with self.sessions() as session:
            incidents = await active_incidents(session)
        reports = []
        for incident in incidents:
            try:
                report = await self.sync_incident(incident)
            except SLACK_FAILURES as exc:
                log.warning("sync of incident %s in %s failed: %s", incident.id, incident.channel_id, error_code(exc))
                continue
            log.info("sync of incident %s in %s: %s", incident.id, incident.channel_id, report.summary())
            reports.append(report)
        return reports

    async def sync_incident(self, incident: Incident) -> SyncReport:
        report = SyncReport(incident_id=incident.id, channel_id=incident.channel_id)
        async with self.sessions() as session:
            stored = {m.ts: m for m in await incident_messages(session, incident.id)}
            reactions = await channel_reactions(session, incident.team_id, incident.channel_id, self.timeline_emojis)
        read_at = datetime_to_ts(self.clock.now())
        oldest = self._window_start(incident, stored)
        slack = await self._read_channel(incident.channel_id, oldest, stored, report)
        # The read's own time, on Slack's clock as far as the read shows it.
        observed_ts = max(read_at, slack.newest_ts, key=ts_key)
        async with self.sessions.begin() as session:
            current = await capturing_incident(session, incident.team_id, incident.channel_id)
            if current is None or current.id != incident.id:
                return report  # the incident moved on while Slack was read: nothing to repair
            await self._repair_messages(session, incident, stored, slack, oldest, report)
            await self._repair_reactions(session, incident, reactions, slack, observed_ts, report)
            read_to = slack.newest_top_level_ts
            if read_to and (current.history_read_ts is None or ts_key(current.history_read_ts) < ts_key(read_to)):
                current.history_read_ts = read_to
        return report

    # --- reading Slack ---------------------------------------------------------------------

    @staticmethod
    def _window_start(incident: Incident, stored: dict[str, Message]) -> str:
        """The oldest ts to read from: the incident's start, its card, or its first stored
        message, whichever is earliest (the card's ts is on Slack's own clock)."""
        candidates = [datetime_to_ts(incident.started_at), *(ts for ts in (incident.card_ts,) if ts), *stored]
        return min(candidates, key=ts_key)

    async def _read_channel(
        self, channel_id: str, oldest: str, stored: dict[str, Message], report: SyncReport
    ) -> _SlackView:
        slack = _SlackView()
        parents: list[str] = []
        async for message in self._pages(
            report, self.client.conversations_history, channel=channel_id, oldest=oldest, inclusive=True
        ):
            slack.see(message, top_level=True)
            if message.get("reply_count") and message.get("thread_ts") == message.get("ts"):
                parents.append(message["ts"])
        # Threads whose parent is outside the window (or gone) but whose replies were stored.
        parents += sorted({m.thread_ts for m in stored.values() if m.thread_ts} - set(parents), key=ts_key)
        for parent_ts in parents:
            try:
                async for message in self._pages(
                    report,
                    self.client.conversations_replies,
                    channel=channel_id,
                    ts=parent_ts,
                    oldest=oldest,
                    inclusive=True,
                ):
                    if message.get("ts") != parent_ts:  # the parent comes first on every page
                        slack.see(message)
                slack.thread_complete[parent_ts] = True
            except SLACK_FAILURES as exc:
                if error_code(exc) == "thread_not_found":
                    # Parent and every reply are gone (a parent with replies leaves a tombstone).
                    slack.thread_complete[parent_ts] = True
                else:
                    slack.thread_complete[parent_ts] = False
                    report.unread.append(f"thread {parent_ts}: {error_code(exc)}")
        return slack

    async def _pages(
        self, report: SyncReport, method: Callable[..., Awaitable[Any]], **args: Any
    ) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            await self.pacer.wait()
            report.slack_calls += 1
            page = await method(limit=PAGE_SIZE, **args, **({"cursor": cursor} if cursor else {}))
            for message in page.get("messages") or []:
                if isinstance(message, dict):
                    yield message
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    # --- repairing -------------------------------------------------------------------------

    async def _repair_messages(
        self,
        session: Any,
        incident: Incident,
        stored: dict[str, Message],
        slack: _SlackView,
        oldest: str,
        report: SyncReport,
    ) -> None:
        channel_id, team_id = incident.channel_id, incident.team_id
        for ts, raw in sorted(slack.messages.items(), key=lambda kv: ts_key(kv[0])):
            if raw.get("subtype") == "tombstone":
                continue
            try:
                message = SlackMessage.parse(channel_id, raw)
            except MalformedPayload:
                continue
            row = stored.get(ts)
            pinned = any(
                r.get("name") in self.timeline_emojis for r in raw.get("reactions") or [] if isinstance(r, dict)
            )
            if row is None or row.source == "missing":
                # Intake keeps human messages, and any message someone pinned to the timeline.
                if message.is_human or pinned or row is not None:
                    await insert_message(session, message_row(team_id, incident.id, message, "sync"))
                    report.messages_added += 1
                continue
            if row.deleted:
                continue
            if message.edited_ts and (row.edited_ts is None or ts_key(row.edited_ts) < ts_key(message.edited_ts)):
                await apply_message_edit(session, message_row(team_id, incident.id, message, "sync"))
                report.edits += 1
        for ts, row in stored.items():
            if row.deleted or row.source == "missing" or ts_key(ts) < ts_key(oldest):
                continue
            if row.thread_ts is not None and not slack.thread_complete.get(row.thread_ts, False):
                continue
            listed = slack.messages.get(ts)
            if listed is None or listed.get("subtype") == "tombstone":
                await mark_message_deleted(
                    session, tombstone_row(team_id, incident.id, channel_id, ts, row.user_id, "sync")
                )
                report.deletes += 1

    async def _repair_reactions(
        self,
        session: Any,
        incident: Incident,
        reactions: list[Any],
        slack: _SlackView,
        observed_ts: str,
        report: SyncReport,
    ) -> None:
        known: dict[tuple[str, str, str], bool] = {(r.message_ts, r.user_id, r.emoji): r.present for r in reactions}
        seen: dict[tuple[str, str], set[str]] = defaultdict(set)  # (message ts, emoji) -> users
        complete: set[tuple[str, str]] = set()
        read_whole: list[str] = []  # messages whose timeline reactions Slack listed in full
        for ts, raw in slack.messages.items():
            if raw.get("subtype") == "tombstone":
                continue
            truncated = False
            for reaction in raw.get("reactions") or []:
                if not isinstance(reaction, dict) or reaction.get("name") not in self.timeline_emojis:
                    continue
                users = [u for u in reaction.get("users") or [] if isinstance(u, str)]
                seen[(ts, reaction["name"])].update(users)
                # Slack lists at most a few users per reaction; a short list says nothing of the rest.
                count = reaction.get("count")
                if len(users) >= (count if isinstance(count, int) else 0):
                    complete.add((ts, reaction["name"]))
                else:
                    truncated = True
            if not truncated:
                read_whole.append(ts)
        changes: list[tuple[str, str, str, bool]] = []
        for (ts, emoji), reacted in seen.items():
            changes += [(ts, user, emoji, True) for user in reacted if not known.get((ts, user, emoji), False)]
        for (ts, user, emoji), present in known.items():
            if not present or ts not in slack.messages or slack.messages[ts].get("subtype") == "tombstone":
                continue
            listed = user in seen.get((ts, emoji), set())
            if not listed and ((ts, emoji) in complete or (ts, emoji) not in seen):
                changes.append((ts, user, emoji, False))
        for ts, user, emoji, present in changes:
            await set_reaction(
                session,
                team_id=incident.team_id,
                channel_id=incident.channel_id,
                message_ts=ts,
                user_id=user,
                emoji=emoji,
                present=present,
                event_ts=observed_ts,
            )
            if present:
                report.pins_added += 1
            else:
                report.pins_removed += 1
        # Events older than this read are stale for these messages, even for people the read
        # did not list (a reaction added and removed while the bot was away).
        await mark_reactions_read(session, incident.team_id, incident.channel_id, read_whole, observed_ts)
