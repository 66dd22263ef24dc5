"""Events API: channel messages, edits, deletes and reactions feed the timeline.

Bolt acknowledges events before these run. Every subscribed event type has a listener,
because an event nobody handles is answered 404 and Slack retries it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.listeners.context import services_of
from bot.listeners.running import tracked
from bot.payloads import MAX_EMOJI, MAX_EVENT_ID, MalformedPayload, SlackMessage, require_id, require_str, require_ts

log = logging.getLogger("postmortem_bot.listeners.events")

MAX_CHANNEL_NAME = 80  # Slack's limit on a channel name


def register(app: AsyncApp) -> None:
    app.event("message")(tracked(on_message))
    app.event("reaction_added")(tracked(on_reaction_added))
    app.event("reaction_removed")(tracked(on_reaction_removed))
    # Documents name people and channels as Slack last described them: keep up with changes.
    app.event("user_change")(tracked(on_user_change))
    app.event("channel_rename")(tracked(on_rename))
    app.event("group_rename")(tracked(on_rename))


def register_catch_all(app: AsyncApp) -> None:
    """Every other event type; registered after all other listeners, so it shadows none."""
    # Subscribed in manifest.yml, handled by later features; recorded so they are not retried.
    app.event(re.compile(".*"))(tracked(on_other_event))


def _object(value: Any) -> dict[str, Any]:
    """A nested payload object, or {} when a malformed payload has something else there."""
    return value if isinstance(value, dict) else {}


def _envelope(body: dict[str, Any]) -> tuple[str, str]:
    return require_id(body, "team_id"), require_str(body, "event_id", MAX_EVENT_ID)


async def on_message(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    timeline = services_of(context).timeline
    try:
        team_id, event_id = _envelope(body)
        channel_id = require_id(event, "channel")
        subtype = event.get("subtype")
        if subtype == "message_changed":
            previous = _object(event.get("previous_message"))
            previous_text = previous.get("text")
            await timeline.record_edit(
                team_id,
                event_id,
                SlackMessage.parse(channel_id, event.get("message")),
                previous_text if isinstance(previous_text, str) else None,
            )
        elif subtype == "message_deleted":
            previous = _object(event.get("previous_message"))
            previous_user = previous.get("user")
            await timeline.record_delete(
                team_id,
                event_id,
                channel_id,
                require_ts(event, "deleted_ts"),
                previous_user if isinstance(previous_user, str) else None,
            )
        else:
            await timeline.record_message(team_id, event_id, SlackMessage.parse(channel_id, event))
    except MalformedPayload as exc:
        log.warning("ignored malformed message event: %s", exc)


async def on_reaction_added(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    await _on_reaction(body, event, context, present=True)


async def on_reaction_removed(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    await _on_reaction(body, event, context, present=False)


async def _on_reaction(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, present: bool) -> None:
    timeline = services_of(context).timeline
    try:
        team_id, event_id = _envelope(body)
        item = _object(event.get("item"))
        if item.get("type") != "message":
            await timeline.skip_event(team_id, event_id)  # reactions on files are not timeline material
            return
        await timeline.record_reaction(
            team_id,
            event_id,
            channel_id=require_id(item, "channel"),
            message_ts=require_ts(item, "ts"),
            user_id=require_id(event, "user"),
            emoji=require_str(event, "reaction", MAX_EMOJI),
            present=present,
            event_ts=require_ts(event, "event_ts"),
            item_user=event.get("item_user") if isinstance(event.get("item_user"), str) else None,
        )
    except MalformedPayload as exc:
        log.warning("ignored malformed reaction event: %s", exc)


async def on_user_change(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    try:
        team_id, event_id = _envelope(body)
        user = _object(event.get("user"))
        require_id(user, "id")
    except MalformedPayload as exc:
        log.warning("ignored malformed user_change event: %s", exc)
        return
    await services_of(context).people.user_changed(team_id, event_id, user)


async def on_rename(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    """`channel_rename` and `group_rename` (a private channel) carry the same payload."""
    try:
        team_id, event_id = _envelope(body)
        channel = _object(event.get("channel"))
        channel_id = require_id(channel, "id")
        name = require_str(channel, "name", MAX_CHANNEL_NAME)
    except MalformedPayload as exc:
        log.warning("ignored malformed %s event: %s", event.get("type"), exc)
        return
    await services_of(context).access.channel_renamed(team_id, event_id, channel_id, name)


async def on_other_event(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    try:
        team_id, event_id = _envelope(body)
    except MalformedPayload as exc:
        log.warning("ignored malformed event: %s", exc)
        return
    log.info("event %s (%s) has nothing to do yet", event.get("type"), event_id)
    await services_of(context).timeline.skip_event(team_id, event_id)
