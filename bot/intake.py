"""What each Events API delivery means, and applying a batch of them in arrival order.

Deliveries reach here from the inbox (bot/inbox.py), already committed and acknowledged.
Channel events (messages, edits, deletes, reactions) go to the timeline as one batch, in
one transaction; directory events (a profile or a channel name changed) are applied one by
one. A payload Slack would never send is logged and recorded as handled, never retried.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.access import ChannelAccess
from bot.home import HomeService
from bot.payloads import MAX_EMOJI, MAX_EVENT_ID, MalformedPayload, SlackMessage, require_id, require_str, require_ts
from bot.people import PeopleDirectory
from bot.timeline import ChannelEvent, Deleted, Edited, Ignored, Posted, Reacted, TimelineService

log = logging.getLogger("postmortem_bot.intake")

MAX_CHANNEL_NAME = 80  # Slack's limit on a channel name


@dataclass(frozen=True)
class UserChanged:
    team_id: str
    event_id: str
    user: Mapping[str, Any]


@dataclass(frozen=True)
class ChannelRenamed:
    """`channel_rename` and `group_rename` (a private channel) carry the same payload."""

    team_id: str
    event_id: str
    channel_id: str
    name: str


@dataclass(frozen=True)
class HomeOpened:
    """Someone opened the bot's Home tab: publish what they owe."""

    team_id: str
    event_id: str
    user_id: str


IntakeEvent = ChannelEvent | UserChanged | ChannelRenamed | HomeOpened


def envelope(body: Mapping[str, Any]) -> tuple[str, str]:
    """(team_id, event_id) of an Events API delivery; MalformedPayload when Slack could not
    have sent it (then it cannot be recorded as handled either)."""
    return require_id(body, "team_id"), require_str(body, "event_id", MAX_EVENT_ID)


def _object(value: Any) -> dict[str, Any]:
    """A nested payload object, or {} when a malformed payload has something else there."""
    return value if isinstance(value, dict) else {}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse(body: Mapping[str, Any]) -> IntakeEvent:
    """The delivery's meaning. An event the bot has no use for, or one malformed inside a
    well-formed envelope, is Ignored: recorded so that its redelivery is cheap too."""
    team_id, event_id = envelope(body)
    event = _object(body.get("event"))
    kind = event.get("type")
    try:
        if kind == "message":
            return _message(team_id, event_id, event)
        if kind in ("reaction_added", "reaction_removed"):
            return _reaction(team_id, event_id, event, present=kind == "reaction_added")
        if kind == "user_change":
            user = _object(event.get("user"))
            require_id(user, "id")
            return UserChanged(team_id, event_id, user)
        if kind == "app_home_opened":
            if event.get("tab", "home") != "home":
                return Ignored(team_id, event_id)  # the Messages tab: nothing to draw there
            return HomeOpened(team_id, event_id, require_id(event, "user"))
        if kind in ("channel_rename", "group_rename"):
            channel = _object(event.get("channel"))
            return ChannelRenamed(
                team_id, event_id, require_id(channel, "id"), require_str(channel, "name", MAX_CHANNEL_NAME)
            )
    except MalformedPayload as exc:
        log.warning("ignored malformed %s event %s: %s", kind, event_id, exc)
        return Ignored(team_id, event_id)
    log.info("event %s (%s) has nothing to do yet", kind, event_id)
    return Ignored(team_id, event_id)


def _message(team_id: str, event_id: str, event: dict[str, Any]) -> ChannelEvent:
    channel_id = require_id(event, "channel")
    subtype = event.get("subtype")
    previous = _object(event.get("previous_message"))
    if subtype == "message_changed":
        return Edited(
            team_id, event_id, SlackMessage.parse(channel_id, event.get("message")), _string(previous.get("text"))
        )
    if subtype == "message_deleted":
        return Deleted(team_id, event_id, channel_id, require_ts(event, "deleted_ts"), _string(previous.get("user")))
    return Posted(team_id, event_id, SlackMessage.parse(channel_id, event))


def _reaction(team_id: str, event_id: str, event: dict[str, Any], present: bool) -> ChannelEvent:
    item = _object(event.get("item"))
    if item.get("type") != "message":
        return Ignored(team_id, event_id)  # reactions on files are not timeline material
    return Reacted(
        team_id,
        event_id,
        channel_id=require_id(item, "channel"),
        message_ts=require_ts(item, "ts"),
        user_id=require_id(event, "user"),
        emoji=require_str(event, "reaction", MAX_EMOJI),
        present=present,
        event_ts=require_ts(event, "event_ts"),
        item_user=_string(event.get("item_user")),
    )


class IntakeService:
    """Applies acknowledged deliveries: the timeline's in one batch, the others one by one."""

    def __init__(
        self, timeline: TimelineService, people: PeopleDirectory, access: ChannelAccess, home: HomeService
    ) -> None:
        self.timeline = timeline
        self.people = people
        self.access = access
        self.home = home

    async def apply(self, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Apply deliveries (parsed request bodies) in the order given. Raises if the batch
        could not be written; nothing of the timeline's part is then kept."""
        events = [parse(body) for body in bodies]
        # A Home opened is recorded with the timeline's events (its redelivery then publishes
        # nothing again); the directory's claim their ids themselves.
        channel_events = [
            Ignored(e.team_id, e.event_id) if isinstance(e, HomeOpened) else e
            for e in events
            if not isinstance(e, UserChanged | ChannelRenamed)
        ]
        if channel_events:
            await self.timeline.apply(channel_events)
        for event in events:
            if isinstance(event, HomeOpened):
                await self._publish_home(event)
            elif isinstance(event, UserChanged):
                await self.people.user_changed(event.team_id, event.event_id, event.user)
            elif isinstance(event, ChannelRenamed):
                await self.access.channel_renamed(event.team_id, event.event_id, event.channel_id, event.name)

    async def _publish_home(self, event: HomeOpened) -> None:
        try:
            await self.home.publish(event.team_id, event.user_id)
        except Exception:  # the person sees the old Home and can open it again; the batch is kept
            log.exception("could not publish %s's Home", event.user_id)
