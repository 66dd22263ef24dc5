"""conversations.*: joining, reading history and threads, opening DMs, listing members."""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, SlackError, api_method
from slack_emulator.limits import MAX_CONVERSATION_USERS
from slack_emulator.methods.visibility import member_channel, visible_channel, visible_message
from slack_emulator.records import Channel, in_ts_order, is_reply, shows_in_history, ts_key
from slack_emulator.scopes import ConversationKind, per_conversation

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator

OPEN_SCOPES: Mapping[ConversationKind, str] = MappingProxyType({"im": "im:write", "mpim": "mpim:write"})
"""conversations.open's scope by what it opens.  It opens DMs and group DMs only; given a
channel it answers ``channel_not_found`` whatever the token holds."""


def _within(ts: str, oldest: str | None, latest: str | None, inclusive: bool) -> bool:
    """Whether ``ts`` falls between ``oldest`` and ``latest``, both exclusive unless
    ``inclusive`` -- the rule conversations.history and .replies apply."""
    key = ts_key(ts)
    if oldest is not None:
        bound = ts_key(oldest)
        if key < bound or (key == bound and not inclusive):
            return False
    if latest is not None:
        bound = ts_key(latest)
        if key > bound or (key == bound and not inclusive):
            return False
    return True


def _encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: str, kind: str, error: str = "invalid_cursor") -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError(error) from None
    prefix, sep, value = decoded.partition(":")
    if prefix != kind or not sep or not value:
        raise SlackError(error)
    return value


def _listed(messages: Iterable[JSON], include_metadata: bool) -> list[JSON]:
    """Copies of stored messages as conversations.history / .replies list them: message
    ``metadata`` only when the call asked for it with ``include_all_metadata``."""
    listed = copy.deepcopy(list(messages))
    if not include_metadata:
        for message in listed:
            message.pop("metadata", None)
    return listed


@api_method(
    "conversations.join",
    scope="channels:join",
    errors=("channel_not_found", "is_archived", "method_not_supported_for_channel_type"),
)
def conversations_join(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    if not channel.is_public:
        raise SlackError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackError("is_archived")
    if slack.bot_user_id in channel.members:
        return {
            "channel": slack._conversation_json(channel),
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    channel.members.append(slack.bot_user_id)
    if slack.announce_joins:
        join = {
            "type": "message",
            "subtype": "channel_join",
            "user": slack.bot_user_id,
            "text": f"<@{slack.bot_user_id}> has joined the channel",
            "ts": slack.new_ts(),
            "team": slack.team_id,
        }
        channel.messages[join["ts"]] = join
    return {"channel": slack._conversation_json(channel)}


@api_method("conversations.info", scope=per_conversation("read"), errors=("channel_not_found",))
def conversations_info(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    info = slack._conversation_json(channel)
    if args.flag("include_num_members") and not channel.is_im:
        info["num_members"] = len(channel.members)
    return {"channel": info}


@api_method(
    "conversations.history",
    scope=per_conversation("history"),
    errors=("channel_not_found", "not_in_channel", "invalid_ts_latest", "invalid_ts_oldest", "invalid_cursor"),
)
def conversations_history(slack: SlackEmulator, args: Args) -> JSON:
    channel = member_channel(slack, args.required("channel"))
    latest = args.timestamp("latest", "invalid_ts_latest")
    oldest = args.timestamp("oldest", "invalid_ts_oldest")
    inclusive = args.flag("inclusive")
    limit = args.limit(default=100, maximum=1000)
    found = [
        m
        for m in in_ts_order(channel.messages.values(), newest_first=True)
        if shows_in_history(m) and _within(m["ts"], oldest, latest, inclusive)
    ]
    cursor = args.text("cursor")
    if cursor is not None:
        start = ts_key(_decode_cursor(cursor, "next_ts"))
        found = [m for m in found if ts_key(m["ts"]) <= start]
    page, rest = found[:limit], found[limit:]
    body: JSON = {
        "messages": _listed(page, args.flag("include_all_metadata")),
        "has_more": bool(rest),
        "pin_count": len(channel.pins),
        "channel_actions_ts": None,
        "channel_actions_count": 0,
    }
    if rest:
        body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
    return body


@api_method(
    "conversations.replies",
    scope=per_conversation("history"),
    errors=("channel_not_found", "not_in_channel", "thread_not_found", "invalid_cursor"),
)
def conversations_replies(slack: SlackEmulator, args: Args) -> JSON:
    channel = member_channel(slack, args.required("channel"))
    message = visible_message(channel, args.required("ts"), "thread_not_found")
    latest = args.timestamp("latest", "invalid_arguments")
    oldest = args.timestamp("oldest", "invalid_arguments")
    inclusive = args.flag("inclusive")
    limit = args.limit(default=1000, maximum=1000)
    # Asked with the ts of a reply, Slack answers the whole thread, parent first.
    parent_ts = message["thread_ts"] if is_reply(message) else message["ts"]
    parent = channel.messages.get(parent_ts)
    if parent is None:
        raise SlackError("thread_not_found")
    replies = [
        m
        for m in in_ts_order(channel.messages.values())
        if is_reply(m) and m["thread_ts"] == parent_ts and _within(m["ts"], oldest, latest, inclusive)
    ]
    cursor = args.text("cursor")
    if cursor is not None:
        start = ts_key(_decode_cursor(cursor, "next_ts"))
        replies = [m for m in replies if ts_key(m["ts"]) >= start]
    page, rest = replies[:limit], replies[limit:]
    body: JSON = {"messages": _listed([parent, *page], args.flag("include_all_metadata")), "has_more": bool(rest)}
    if rest:
        body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
    return body


@api_method(
    "conversations.open",
    scope=OPEN_SCOPES,
    errors=(
        "channel_not_found",
        "user_not_found",
        "user_disabled",
        "users_list_not_supplied",
        "too_many_users",
        "cannot_dm_bot",
    ),
)
def conversations_open(slack: SlackEmulator, args: Args) -> JSON:
    channel_id = args.text("channel")
    if channel_id is not None:  # re-open an existing DM / group DM
        channel = visible_channel(slack, channel_id)
        if channel.is_public:
            raise SlackError("channel_not_found")
        return {"channel": {"id": channel.id}, "no_op": True, "already_open": True}
    raw_users = args.text("users")
    users = [u.strip() for u in (raw_users or "").split(",") if u.strip()]
    if not users:
        raise SlackError("users_list_not_supplied")
    if len(users) > MAX_CONVERSATION_USERS:
        raise SlackError("too_many_users")
    for user in users:
        if user not in slack._users:
            raise SlackError("user_not_found")
        if slack._users[user].deleted:
            raise SlackError("user_disabled")
    humans = [u for u in dict.fromkeys(users) if u != slack.bot_user_id]
    # A bot token cannot open a 1:1 DM with a bot user, itself included: Slack answers
    # cannot_dm_bot (undocumented in the spec; seen from im.open and conversations.open).
    if not humans or (len(humans) == 1 and slack._users[humans[0]].is_bot):
        raise SlackError("cannot_dm_bot")
    if len(humans) == 1:
        existed = any(c.is_im and c.im_user == humans[0] for c in slack._channels.values())
        channel = slack._channels[slack.open_dm(humans[0])]
    else:
        channel, existed = _open_group_dm(slack, humans)
    result: JSON = {"channel": {"id": channel.id}}
    if args.flag("return_im"):
        result["channel"] = slack._conversation_json(channel)
    if existed:
        result.update(no_op=True, already_open=True)
    return result


def _open_group_dm(slack: SlackEmulator, humans: list[str]) -> tuple[Channel, bool]:
    members = {slack.bot_user_id, *humans}
    for channel in slack._channels.values():
        if channel.is_mpim and set(channel.members) == members:
            return channel, True
    names = "--".join(sorted(slack._users[u].name for u in members))
    channel_id = slack._new_id("G")
    channel = Channel(
        channel_id,
        f"mpdm-{names}-1",
        is_private=True,
        is_mpim=True,
        members=[slack.bot_user_id, *humans],
        created=slack.unix_now(),
    )
    slack._channels[channel_id] = channel
    return channel, False


@api_method(
    "conversations.members",
    scope=per_conversation("read"),
    errors=("channel_not_found", "invalid_limit", "invalid_cursor"),
)
def conversations_members(slack: SlackEmulator, args: Args) -> JSON:
    channel = visible_channel(slack, args.required("channel"))
    limit = args.integer("limit", 100)
    if limit < 0 or limit > 1000:
        raise SlackError("invalid_limit")
    limit = limit or 100
    members = channel.members
    start = 0
    cursor = args.text("cursor")
    if cursor is not None:
        user = _decode_cursor(cursor, "user")
        if user not in members:
            raise SlackError("invalid_cursor")
        start = members.index(user)
    page = members[start : start + limit]
    rest = members[start + limit :]
    return {
        "members": list(page),
        "response_metadata": {"next_cursor": _encode_cursor("user", rest[0]) if rest else ""},
    }
