"""What the bot's token can see: a conversation or message it may not see does not exist
for it, answered with the error Slack gives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_emulator.api import JSON, SlackError
from slack_emulator.records import Channel

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator

__all__ = ["member_channel", "visible_channel", "visible_message"]


def visible_channel(slack: SlackEmulator, channel_id: str) -> Channel:
    """The channel as the bot sees it: private conversations it is not in do not
    exist for it (``channel_not_found``), as with Slack."""
    channel = slack._channels.get(channel_id)
    if channel is None or (not channel.is_public and slack.bot_user_id not in channel.members):
        raise SlackError("channel_not_found")
    return channel


def member_channel(slack: SlackEmulator, channel_id: str) -> Channel:
    """A channel the bot must be in: ``not_in_channel`` for a public one it is not."""
    channel = visible_channel(slack, channel_id)
    if slack.bot_user_id not in channel.members:
        raise SlackError("not_in_channel")
    return channel


def visible_message(channel: Channel, ts: str | None, error: str) -> JSON:
    message = channel.messages.get(ts or "")
    if message is None:
        raise SlackError(error)
    return message
