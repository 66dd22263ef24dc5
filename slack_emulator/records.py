"""The emulated workspace's records: users, conversations with their messages, threads and
pins, views, uploaded files and trigger ids.

Messages are stored as dicts exactly in the shape the Web API returns them, so a handler
answers with a copy of what it stored.  A conversation keeps its threads right (reply
counts, tombstones) itself, whoever changes it: a Web API method or a test acting as a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_emulator.api import JSON
from slack_emulator.scopes import ConversationKind

__all__ = [
    "Channel",
    "File",
    "Pin",
    "Trigger",
    "User",
    "View",
    "in_ts_order",
    "is_reply",
    "shows_in_history",
    "ts_key",
]


def ts_key(ts: str) -> tuple[int, int]:
    """Sort key of a Slack ts ("1712345678.000100"): numeric, not lexicographic."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def in_ts_order(messages: Iterable[JSON], *, newest_first: bool = False) -> list[JSON]:
    return sorted(messages, key=lambda m: ts_key(m["ts"]), reverse=newest_first)


def is_reply(message: Mapping[str, Any]) -> bool:
    thread_ts = message.get("thread_ts")
    return thread_ts is not None and thread_ts != message["ts"]


def shows_in_history(message: Mapping[str, Any]) -> bool:
    """conversations.history lists top-level messages and broadcast thread replies only."""
    return not is_reply(message) or message.get("subtype") == "thread_broadcast"


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str
    is_bot: bool
    deleted: bool
    email: str | None = None
    bot_id: str | None = None
    updated: int = 0  # set from the emulator's clock when created
    erased: bool = False  # gone from what the bot can see: users.info answers user_not_found


@dataclass
class Pin:
    created: int
    created_by: str


@dataclass
class Channel:
    """A conversation: public or private channel, DM (``is_im``) or group DM (``is_mpim``).

    ``messages`` maps ts -> message dict, stored exactly in the shape the API returns.
    """

    id: str
    name: str
    is_private: bool
    is_archived: bool = False
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    members: list[str] = field(default_factory=list)
    created: int = 0  # set from the emulator's clock when created
    messages: dict[str, JSON] = field(default_factory=dict)
    pins: dict[str, Pin] = field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        return not (self.is_private or self.is_im or self.is_mpim)

    @property
    def kind(self) -> ConversationKind:
        """Which scope family (channels, groups, im, mpim) guards this conversation."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "private" if self.is_private else "public"

    def attach_to_thread(self, message: JSON, thread_ts: str) -> None:
        parent = self.messages.get(thread_ts)
        message["thread_ts"] = thread_ts
        if parent is not None:
            message["parent_user_id"] = parent.get("user")
        self.messages[message["ts"]] = message
        self.refresh_thread(thread_ts)

    def refresh_thread(self, thread_ts: str) -> None:
        """Recompute a thread parent's reply_count, reply_users and latest_reply."""
        parent = self.messages.get(thread_ts)
        if parent is None:
            return
        replies = in_ts_order(m for m in self.messages.values() if is_reply(m) and m["thread_ts"] == thread_ts)
        if not replies:
            for key in ("thread_ts", "reply_count", "reply_users", "reply_users_count", "latest_reply"):
                parent.pop(key, None)
            if parent.get("subtype") == "tombstone":
                del self.messages[thread_ts]
            return
        users = list(dict.fromkeys(r.get("user") for r in replies if r.get("user")))
        parent.update(
            thread_ts=thread_ts,
            reply_count=len(replies),
            reply_users=users,
            reply_users_count=len(users),
            latest_reply=replies[-1]["ts"],
        )

    def remove_message(self, message: JSON) -> None:
        """Delete a message; a thread parent with replies leaves a tombstone, as in Slack."""
        ts = message["ts"]
        self.pins.pop(ts, None)
        if is_reply(message):
            del self.messages[ts]
            self.refresh_thread(message["thread_ts"])
        elif message.get("reply_count"):
            self.messages[ts] = {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "hidden": True,
                "ts": ts,
                **{
                    k: message[k]
                    for k in ("thread_ts", "reply_count", "reply_users", "reply_users_count", "latest_reply")
                },
            }
        else:
            del self.messages[ts]


@dataclass
class Trigger:
    issued_at: float
    user: str | None
    used: bool = False


@dataclass
class View:
    id: str
    payload: JSON
    user: str | None
    hash: str
    root_view_id: str
    previous_view_id: str | None = None


@dataclass
class File:
    id: str
    filename: str
    length: int
    created: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
