"""Text and block helpers for every Block Kit builder in bot/ui/, and Slack's limits, once.

Escaping user text, mentions and channel links that only a well-formed id becomes, dates
shown in each reader's time zone, the few block shapes the messages share, and reading ids
and inputs back from payloads without ever raising.

Escaping: everything people typed (titles, reasons, notes, locations) goes through
`escape()` (or `escape_line`/`escape_lines`, which also cut it to fit); user and channel ids
are checked before they become <@U…> or <#C…>, so no input can ping a channel. Plain-text
objects carry only the bot's own words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

# Block Kit and message limits (../shared/slack-reference/README.md), enforced here once.
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_MODAL_TITLE = 24
MAX_FALLBACK_TEXT = 4000  # the notification text; Slack truncates at 40,000 but nobody reads that
MAX_FIELD_TEXT = 2000  # a section field
# Slack refuses a message whose blocks hold more than roughly 12-13k characters in all
# (msg_blocks_too_long), well before 50 blocks of 3,000 characters; long messages stay under this.
MAX_BLOCKS_TEXT = 11_000

# How much of what people typed the follow-through messages show, and how many people they name.
MAX_NOTE = 500  # "Not mine" note, a meeting's place
MAX_TITLE_INLINE = 100  # an item title inside a sentence or a list
MAX_INCIDENT_TITLE = 150
MAX_LISTED_PEOPLE = 30

_USER_RE = re.compile(r"[UWB][A-Z0-9]{1,39}")
_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{1,39}")
_ESCAPED_MENTION_RE = re.compile(r"&lt;@([UW][A-Z0-9]{1,39})&gt;")


# --- user text ------------------------------------------------------------------------------


def escape(text: str | None) -> str:
    """Escape user text for mrkdwn: only &, < and > (Slack's rule), so `<!channel>` cannot ping."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis


def _escape_within(raw: str, limit: int) -> str:
    """`raw` escaped, cut so that it is at most `limit` characters once escaped."""
    out = escape(truncate(raw, limit))
    n = limit
    while len(out) > limit and n > 1:
        n = max(1, n - (len(out) - limit))
        out = escape(truncate(raw, n))
    return out[:limit]


def escape_line(text: Any, limit: int) -> str:
    """`text` escaped for mrkdwn, on one line, at most `limit` characters once escaped."""
    return _escape_within(" ".join(str(text or "").split()), limit)


def escape_lines(text: Any, limit: int) -> str:
    """Like escape_line, but keeps line breaks (reasons and notes people wrote in several lines)."""
    return _escape_within(str(text or "").strip(), limit)


def phrase(text: Any, limit: int = 300) -> str:
    """A phrase written by a service: escaped, but its plain user mentions kept."""
    return _ESCAPED_MENTION_RE.sub(r"<@\1>", escape_line(text, limit))


def cut_mrkdwn(line: str, limit: int) -> str:
    """Cut caller-made mrkdwn to `limit` without leaving half a <…> token or &entity; open."""
    if len(line) <= limit:
        return line
    cut = line[: max(0, limit - 1)]
    opening = cut.rfind("<")
    if opening > cut.rfind(">"):
        cut = cut[:opening]
    amp = cut.rfind("&")
    if amp > cut.rfind(";") and len(cut) - amp <= 8:
        cut = cut[:amp]
    return cut + "…"


# --- people, channels, severities --------------------------------------------------------------


def valid_user_id(value: Any) -> str | None:
    """`value` if it is shaped like a Slack user id, else None."""
    return value if isinstance(value, str) and _USER_RE.fullmatch(value) else None


def mention(user_id: Any, fallback: str = "someone") -> str:
    """<@U…> for a well-formed user id, else `fallback` (never a raw, unchecked id)."""
    return f"<@{user_id}>" if valid_user_id(user_id) else fallback


def channel_link(channel_id: Any, fallback: str = "the incident channel") -> str:
    """<#C…> for a well-formed channel id, else `fallback`."""
    return f"<#{channel_id}>" if isinstance(channel_id, str) and _CHANNEL_RE.fullmatch(channel_id) else fallback


def people_list(user_ids: Iterable[Any], limit: int = MAX_LISTED_PEOPLE) -> str:
    """Mentions of the well-formed user ids, each once, at most `limit` of them named."""
    ids = list(dict.fromkeys(u for u in user_ids if valid_user_id(u)))
    shown = ", ".join(mention(u) for u in ids[:limit])
    if len(ids) > limit:
        shown += f" and {len(ids) - limit} more"
    return shown or "nobody yet"


def severity_label(severity: Any) -> str:
    """SEV1…SEV4; "" for a severity that is not a number."""
    try:
        return f"SEV{int(severity)}"
    except (TypeError, ValueError):
        return ""


# --- times and dates ------------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def utc_label(at: datetime | None) -> str:
    """The instant in UTC, as documents and fallbacks show it: 2026-11-23 14:05 UTC (naive
    taken as UTC)."""
    if not isinstance(at, datetime):
        return "a time not set yet"
    return _aware(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(at: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A `<!date>` token: Slack renders it in each reader's own time zone, UTC where it cannot
    (naive taken as UTC); "not set" when there is no instant."""
    if not isinstance(at, datetime):
        return "not set"
    at = _aware(at)
    return f"<!date^{int(at.timestamp())}^{fmt}|{utc_label(at)}>"


def as_date(value: Any) -> date | None:
    """A date from a date, a datetime or an ISO string; None for anything else."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def date_label(value: Any) -> str:
    """2026-12-10 (Thu): unambiguous everywhere, with the weekday people plan by."""
    day = as_date(value)
    return f"{day.isoformat()} ({day.strftime('%a')})" if day else "no due date"


def iso_date(value: Any) -> str:
    """2026-12-10, for dates inside a sentence."""
    day = as_date(value)
    return day.isoformat() if day else "no date"


def relative_day(day: date | None, today: date | None) -> str:
    """ "today", "tomorrow", "in 3 days", "2 days ago"; "" when either is unknown."""
    if day is None or today is None:
        return ""
    n = (day - today).days
    if n == 0:
        return "today"
    if n == 1:
        return "tomorrow"
    if n == -1:
        return "yesterday"
    return f"in {n} days" if n > 0 else f"{-n} days ago"


def days_text(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


# --- blocks, messages, modals -------------------------------------------------------------------


def plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT))])


def field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT))


def message(text: str, blocks: Sequence[Block]) -> dict[str, Any]:
    """chat.postMessage / chat.update arguments: the fallback text and the blocks."""
    return {"text": truncate(text, MAX_FALLBACK_TEXT), "blocks": [b.to_dict() for b in blocks]}


def private_metadata(values: Mapping[str, Any]) -> str:
    """What a modal carries back on submission: a few ids, as compact JSON."""
    return json.dumps(dict(values), separators=(",", ":"))


def modal(
    callback_id: str, title: str, submit: str, blocks: Sequence[Block], metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """A small form (views.open `view`) with a Cancel button."""
    view = View(
        type="modal",
        callback_id=callback_id,
        title=plain(truncate(title, MAX_MODAL_TITLE)),
        submit=plain(truncate(submit, MAX_MODAL_TITLE)),
        close=plain("Cancel"),
        private_metadata=private_metadata(metadata),
        blocks=list(blocks),
    )
    return view.to_dict()


def text_size(value: Any) -> int:
    """Characters of text in a rendered block (what msg_blocks_too_long counts)."""
    if isinstance(value, Mapping):
        return sum(len(v) if k == "text" and isinstance(v, str) else text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(text_size(v) for v in value)
    return 0


def packed_list(heading: str, lines: Sequence[str], limit: int) -> str:
    """heading + as many lines as fit in `limit` characters, then a count of the rest."""
    text = heading
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        candidate = f"{text}\n{line}"
        if len(candidate) + (len(f"\n…and {rest} more.") if rest else 0) > limit:
            return f"{text}\n…and {len(lines) - i} more."
        text = candidate
    return text


# --- reading payloads back ------------------------------------------------------------------------


def button_value(value: Any) -> str:
    """The id a button carries: digits only. A missing id is a bug of the caller."""
    number = int(value)
    if number < 0:
        raise ValueError(f"negative id {value!r}")
    return str(number)


def metadata_id(metadata: Any, key: str) -> int | None:
    """The id under `key` in a modal's private_metadata; None if it is not there."""
    if not isinstance(metadata, str) or len(metadata) > 3000:
        return None
    try:
        data = json.loads(metadata)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def element_state(values: Any, block: str, action: str) -> Mapping[str, Any]:
    """The state of one input in view.state.values; {} when it is missing or malformed."""
    if not isinstance(values, Mapping):
        return {}
    actions = values.get(block)
    if not isinstance(actions, Mapping):
        return {}
    element = actions.get(action)
    if not isinstance(element, Mapping):
        element = next((v for v in actions.values() if isinstance(v, Mapping)), {})
    return element


def read_text(values: Any, block: str, action: str, limit: int) -> str:
    """A text input's value, stripped and cut to `limit`; "" if none."""
    value = element_state(values, block, action).get("value")
    return value.strip()[:limit] if isinstance(value, str) else ""
