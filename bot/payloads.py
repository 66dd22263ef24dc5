"""Parsing of Slack payloads into plain values. Slack's shapes stop here.

Anything malformed raises `MalformedPayload`, which listeners log and answer without writing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

TS_PATTERN = re.compile(r"^\d{1,12}\.\d{1,6}$")
# Slack's ids (workspaces T…, enterprises E…, channels C…/G…/D…, people U…/W…): upper-case
# letters and digits. Anything else is refused before it reaches a 32-character column.
SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
MAX_EVENT_ID = 64
MAX_EMOJI = 100

# Message subtypes written by people: everything else (joins, topic changes, bot posts,
# pins) is channel noise, not timeline material.
HUMAN_SUBTYPES = {None, "thread_broadcast", "file_share", "me_message"}


# Slack's markup in message and (escaped) command text.
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
GROUP_MENTION = re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]*))?>")
SPECIAL_MENTION = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
DATE_TOKEN = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
CHANNEL_LINK = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
URL_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")


def plain_text(text: str) -> str:
    """Slack-encoded text as the person typed it: mentions as @name (or @id), links as
    written, &amp; &lt; &gt; decoded. Stored once like this, it is escaped once wherever it
    is shown (mrkdwn, HTML, Markdown), and a stored `<!channel>` can never ping anyone."""
    text = USER_MENTION.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = GROUP_MENTION.sub(lambda m: m.group(2) or "@group", text)
    text = SPECIAL_MENTION.sub(lambda m: "@" + m.group(1), text)
    text = DATE_TOKEN.sub(lambda m: m.group(1), text)
    text = CHANNEL_LINK.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = URL_LINK.sub(lambda m: m.group(2) if m.group(2) and m.group(2) != m.group(1) else m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class MalformedPayload(ValueError):
    """A payload that is signed correctly but lacks what its type must carry."""


def ts_to_datetime(ts: str) -> datetime:
    """Slack's message ts ("1700000000.123456") as a UTC datetime, to the microsecond."""
    if not isinstance(ts, str) or not TS_PATTERN.match(ts):
        raise MalformedPayload(f"not a Slack ts: {ts!r}")
    seconds, fraction = ts.split(".")
    return datetime.fromtimestamp(int(seconds), tz=UTC) + timedelta(microseconds=int(fraction.ljust(6, "0")))


def datetime_to_ts(at: datetime) -> str:
    """An instant as a Slack ts string, for `oldest`/`latest` bounds and ordering by event_ts."""
    return f"{at.timestamp():.6f}"


def ts_key(ts: str) -> tuple[int, int]:
    """A Slack ts as something that orders correctly (strings order only at equal lengths)."""
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros.ljust(6, "0"))


def require_str(payload: Mapping[str, Any], key: str, max_length: int = 255) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"missing {key!r}")
    if len(value) > max_length:
        raise MalformedPayload(f"{key!r} is longer than {max_length} characters")
    return value


def slack_id(value: Any) -> str | None:
    """`value` if it is shaped like a Slack id, else None."""
    return value if isinstance(value, str) and SLACK_ID.match(value) else None


def require_id(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if slack_id(value) is None:
        raise MalformedPayload(f"{key!r} is not a Slack id: {str(value)[:40]!r}")
    return str(value)


def require_ts(payload: Mapping[str, Any], key: str) -> str:
    value = require_str(payload, key)
    ts_to_datetime(value)
    return value


def actor(body: Mapping[str, Any]) -> str | None:
    """The id of the person who pressed or submitted, or None in a malformed payload."""
    user = body.get("user")
    return slack_id(user.get("id") if isinstance(user, Mapping) else None)


def team(body: Mapping[str, Any]) -> str | None:
    """The id of the workspace an interaction came from, or None in a malformed payload.

    Every id a payload carries (incident ids in private_metadata, item ids in button values)
    is looked up within this workspace only."""
    value = body.get("team")
    team_id = value.get("id") if isinstance(value, Mapping) else None
    if team_id is None:  # org-wide installs send `team: null`; the person's own team stands in
        user = body.get("user")
        team_id = user.get("team_id") if isinstance(user, Mapping) else None
    return slack_id(team_id)


@dataclass(frozen=True)
class SlackMessage:
    """A message as the timeline needs it."""

    channel_id: str
    ts: str
    user_id: str | None
    text: str
    thread_ts: str | None = None
    file_names: tuple[str, ...] = field(default=())
    edited_ts: str | None = None
    is_human: bool = True

    @property
    def posted_at(self) -> datetime:
        return ts_to_datetime(self.ts)

    @classmethod
    def parse(cls, channel_id: str, message: object) -> SlackMessage:
        """`message` as a payload gives it: anything that is not an object is refused."""
        if not isinstance(message, Mapping):
            raise MalformedPayload("message is not an object")
        ts = require_ts(message, "ts")
        thread_ts = message.get("thread_ts")
        if thread_ts is not None and (not isinstance(thread_ts, str) or not TS_PATTERN.match(thread_ts)):
            raise MalformedPayload(f"bad thread_ts {thread_ts!r}")
        files = message.get("files") or []
        names = tuple(
            str(f.get("name") or f.get("title") or f.get("id") or "file") for f in files if isinstance(f, Mapping)
        )
        edited = message.get("edited")
        edited_ts = edited.get("ts") if isinstance(edited, Mapping) else None
        text = message.get("text")
        user = message.get("user")
        subtype = message.get("subtype")
        if subtype is not None and not isinstance(subtype, str):
            raise MalformedPayload(f"bad subtype {subtype!r}")
        return cls(
            channel_id=channel_id,
            ts=ts,
            user_id=slack_id(user),
            text=plain_text(text) if isinstance(text, str) else "",
            # A thread parent carries thread_ts == ts; only replies point elsewhere.
            thread_ts=thread_ts if thread_ts and thread_ts != ts else None,
            file_names=names,
            edited_ts=edited_ts if isinstance(edited_ts, str) and TS_PATTERN.match(edited_ts) else None,
            is_human=bool(user) and not message.get("bot_id") and subtype in HUMAN_SUBTYPES,
        )
