"""pins.* and reactions.get: what is attached to a message."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, SlackError, api_method
from slack_emulator.methods.chat import permalink
from slack_emulator.methods.visibility import member_channel, visible_channel, visible_message
from slack_emulator.records import Pin

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator


@api_method(
    "pins.add",
    scope="pins:write",
    errors=(
        "channel_not_found",
        "not_in_channel",
        "no_item_specified",
        "bad_timestamp",
        "message_not_found",
        "already_pinned",
    ),
)
def pins_add(slack: SlackEmulator, args: Args) -> JSON:
    channel = member_channel(slack, args.required("channel"))
    ts = args.timestamp("timestamp", "bad_timestamp")
    if ts is None:
        raise SlackError("no_item_specified")
    message = visible_message(channel, ts, "message_not_found")
    if ts in channel.pins:
        raise SlackError("already_pinned")
    channel.pins[ts] = Pin(slack.unix_now(), slack.bot_user_id)
    message["pinned_to"] = [channel.id]
    return {}


@api_method(
    "pins.remove",
    scope="pins:write",
    errors=("channel_not_found", "not_in_channel", "no_item_specified", "bad_timestamp", "message_not_found", "no_pin"),
)
def pins_remove(slack: SlackEmulator, args: Args) -> JSON:
    channel = member_channel(slack, args.required("channel"))
    ts = args.timestamp("timestamp", "bad_timestamp")
    if ts is None:
        raise SlackError("no_item_specified")
    message = visible_message(channel, ts, "message_not_found")
    if ts not in channel.pins:
        raise SlackError("no_pin")
    del channel.pins[ts]
    message.pop("pinned_to", None)
    return {}


@api_method("pins.list", scope="pins:read", errors=("channel_not_found",))
def pins_list(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    items = [
        {
            "type": "message",
            "created": pin.created,
            "created_by": pin.created_by,
            "channel": channel.id,
            "message": copy.deepcopy(channel.messages[ts]),
        }
        for ts, pin in reversed(channel.pins.items())  # newest pin first, as Slack
    ]
    return {"items": items}


@api_method(
    "reactions.get",
    scope="reactions:read",
    errors=("channel_not_found", "no_item_specified", "bad_timestamp", "message_not_found"),
)
def reactions_get(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    ts = args.timestamp("timestamp", "bad_timestamp")
    if ts is None:
        raise SlackError("no_item_specified")
    message = copy.deepcopy(visible_message(channel, ts, "message_not_found"))
    message["permalink"] = permalink(slack, channel, message)
    return {"type": "message", "channel": channel.id, "message": message}
