"""Who may act on an incident: the rule for private channels, in one place.

An incident belongs to its channel. In a public channel anyone in the workspace may act on it
(anyone can join and read the channel anyway). In a private channel only its members may
press the card's buttons, submit its forms, run `/postmortem` there, or read its timeline
and document: the bot must never show a private channel's content to someone Slack would
not show it to, nor let them change it. Slack is asked (conversations.info, then
conversations.members) and the answer cached briefly, so a burst of clicks costs one call
and a person removed from the channel loses access within CACHE_SECONDS.

Services call `require_member` before they open a database session (it may call Slack),
and raise `AccessDenied` with a sentence the person can act on. When Slack cannot answer,
a private channel is refused (fail closed), a public one is not in question.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import SLACK_FAILURES, error_code

if TYPE_CHECKING:
    from bot.directory import Directory

log = logging.getLogger("postmortem_bot.access")

CACHE_SECONDS = 60
MEMBERS_PAGE = 1000  # Slack's largest page for conversations.members


NOT_A_CHANNEL = (
    "Incidents live in channels: run `/postmortem` in the incident's channel (invite me first if it is "
    "private). Nothing was changed."
)


class AccessDenied(Exception):
    """The person may not act here; the message says why and what to do (no user text in it)."""


@dataclass(frozen=True)
class _Channel:
    private: bool
    members: frozenset[str]  # empty for a public channel: not needed
    name: str = ""


class ChannelAccess:
    def __init__(
        self,
        client: AsyncWebClient,
        directory: Directory,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.monotonic = monotonic
        self.directory = directory  # keeps the channel names Slack tells us, for documents
        self._cache: dict[str, tuple[float, _Channel]] = {}

    async def require_member(self, channel_id: str, user_id: str) -> None:
        """Raise AccessDenied unless `user_id` may act in `channel_id` (see the module doc)."""
        if not channel_id or not user_id:
            raise AccessDenied("This request does not say who is acting where, so I did nothing.")
        if channel_id.startswith("D"):  # a DM: no incident lives there, and Slack would need im:read
            raise AccessDenied(NOT_A_CHANNEL)
        try:
            channel = await self._channel(channel_id)
        except SLACK_FAILURES as exc:  # an error answer, a timeout, a connection down: fail closed
            code = error_code(exc)
            log.warning("cannot check membership of %s in %s: %s", user_id, channel_id, code)
            if code == "missing_scope":  # a group DM: the bot reads channels, not conversations
                raise AccessDenied(NOT_A_CHANNEL) from exc
            if code == "channel_not_found":  # Slack hides private channels the bot is not in
                raise AccessDenied(
                    "I can't see this channel: if it is private, invite me with `/invite @postmortem-bot` "
                    "and try again. Nothing was changed."
                ) from exc
            raise AccessDenied(
                f"I could not check that you are a member of this channel ({code}), so I did nothing. Try again."
            ) from exc
        if channel.private and user_id not in channel.members:
            log.warning("refused %s: not a member of private channel %s", user_id, channel_id)
            raise AccessDenied(
                "This incident is in a private channel you are not a member of: only its members can see "
                "or change it. Ask a member to add you to the channel."
            )

    async def name(self, channel_id: str) -> str | None:
        """The channel's name for documents: as the database knows it, else as Slack says
        (and then kept); None when neither can say."""
        known = await self.directory.channels_named([channel_id])
        if channel_id in known:
            return known[channel_id]
        try:
            return (await self._channel(channel_id)).name or None
        except SLACK_FAILURES as exc:
            log.warning("cannot name channel %s: %s", channel_id, error_code(exc))
            return None

    async def channel_renamed(self, team_id: str, event_id: str, channel_id: str, name: str) -> None:
        """A `channel_rename` / `group_rename` event: forget the cached answer, keep the new name."""
        self.forget(channel_id)
        await self.directory.channel_renamed(team_id, event_id, channel_id, name)

    def forget(self, channel_id: str) -> None:
        """Drop what is cached about `channel_id` (e.g. on a member_joined/left event)."""
        self._cache.pop(channel_id, None)

    async def _channel(self, channel_id: str) -> _Channel:
        cached = self._cache.get(channel_id)
        if cached and self.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        # No database session is open here: services call this before theirs.
        info = await self.client.conversations_info(channel=channel_id)
        data = info.get("channel") or {}
        private = bool(data.get("is_private") or data.get("is_group"))
        members: set[str] = set()
        if private:
            cursor = None
            while True:
                page = await self.client.conversations_members(channel=channel_id, limit=MEMBERS_PAGE, cursor=cursor)
                members.update(m for m in page.get("members") or [] if isinstance(m, str))
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        raw_name = data.get("name")
        name = raw_name if isinstance(raw_name, str) else ""
        channel = _Channel(private=private, members=frozenset(members), name=name)
        self._cache[channel_id] = (self.monotonic(), channel)
        if name:
            self.directory.remember_channel(channel_id, name)
        return channel
