"""Follow-through messages: action-item DMs and their answers, escalations, and the review meeting.

Pure builders (no Slack calls, no database), each returning chat.postMessage /
chat.update arguments ({"text", "blocks"}) or a views.open `view`, within Slack's limits.
Every message is written for someone woken at 3 a.m.: one headline saying what it is,
the facts, and which button to press.

Inputs are plain mappings. An action item: id, title, owner_id, due (date), priority,
type, status, ticket_url, incident_title, incident_channel, commander_id, and optionally
status_note (the won't-do reason, or the note left with "Not mine" or a snooze). An
incident: id, title, channel, severity, resolved_at, deadline, commander_id (missing or
None values are rendered as "not set", never raised on).

Interactivity, for the listeners:
- Buttons of an item DM (block ITEM_ACTIONS_BLOCK) have action ids ITEM_DONE,
  ITEM_IN_PROGRESS, ITEM_CHANGE_DUE, ITEM_NOT_MINE, ITEM_WONT_DO and value str(item id);
  `parse_item_value` reads it back. The ITEM_SNOOZE static select has option values
  f"{item_id}:1d" / f"{item_id}:1w"; `parse_snooze_value` gives (item id, "1d"|"1w").
- Modals: CHANGE_DUE_CALLBACK, NOT_MINE_CALLBACK, WONT_DO_CALLBACK (private_metadata
  {"item_id": id}, read with `read_item_id`) and MEETING_CALLBACK (private_metadata
  {"incident_id": id}, `read_incident_id`). Their inputs have fixed block ids (the *_BLOCK
  constants) and action ids (the *_ACTION constants); `read_change_due`, `read_not_mine`,
  `read_wont_do` and `read_meeting` read view.state.values and never raise.
- `what`, for action_item_answered / channel_update, is one of ANSWERS: "done",
  "in_progress", "snooze:1d", "snooze:1w" (or "snooze"), "change_due", "not_mine",
  "wont_do". The details come from the item as it is after the answer (new due date, new
  owner, status_note). Any other string is shown as a phrase ("@bob <what>: *title*"),
  escaped except for plain user mentions (<@U123>).

Size: besides the 50-block and 3,000-character limits, long messages (the agenda, the
30-day review) keep all their block text under MAX_BLOCKS_TEXT, because Slack refuses a
message whose blocks hold more than roughly 12-13k characters (msg_blocks_too_long);
whatever does not fit is counted in the message, never dropped silently.

Escaping: everything people typed (titles, reasons, notes, locations) is escaped with
`escape()` and cut to fit; user and channel ids are checked before they become <@U…> or
<#C…>, so no input can ping a channel. Plain-text objects carry only the bot's own words.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timezone
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DatePickerElement,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
    TimePickerElement,
    UserMultiSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.content import ACTION_STATUSES, ACTION_TYPES, PRIORITIES
from bot.ui.card import CONTINUE_POSTMORTEM
from bot.ui.text import (
    MAX_FALLBACK_TEXT,
    MAX_MESSAGE_BLOCKS,
    MAX_MODAL_TITLE,
    MAX_SECTION_TEXT,
    escape,
    severity_label,
    slack_date,
    truncate,
    utc_label,
)

# --- action ids, block ids, callback ids ------------------------------------------------

ITEM_DONE = "item_done"
ITEM_IN_PROGRESS = "item_in_progress"
ITEM_SNOOZE = "item_snooze"
ITEM_CHANGE_DUE = "item_change_due"
ITEM_NOT_MINE = "item_not_mine"
ITEM_WONT_DO = "item_wont_do"
ITEM_ACTIONS_BLOCK = "item_actions"

SNOOZE_CHOICES: dict[str, str] = {"1d": "1 day", "1w": "1 week"}
SNOOZE_DAYS: dict[str, int] = {"1d": 1, "1w": 7}

CHANGE_DUE_CALLBACK = "item_change_due_modal"
CHANGE_DUE_BLOCK = "item_due"
CHANGE_DUE_ACTION = "due"

NOT_MINE_CALLBACK = "item_not_mine_modal"
NOT_MINE_OWNER_BLOCK = "item_new_owner"
NOT_MINE_OWNER_ACTION = "owner"
NOT_MINE_NOTE_BLOCK = "item_not_mine_note"
NOT_MINE_NOTE_ACTION = "note"

WONT_DO_CALLBACK = "item_wont_do_modal"
WONT_DO_BLOCK = "item_wont_do_reason"
WONT_DO_ACTION = "reason"

SCHEDULE_MEETING = "meeting_schedule"
MEETING_CALLBACK = "meeting_modal"
MEETING_DATE_BLOCK = "meeting_date"
MEETING_DATE_ACTION = "date"
MEETING_TIME_BLOCK = "meeting_time"
MEETING_TIME_ACTION = "time"
MEETING_ATTENDEES_BLOCK = "meeting_attendees"
MEETING_ATTENDEES_ACTION = "attendees"
MEETING_LOCATION_BLOCK = "meeting_location"
MEETING_LOCATION_ACTION = "location"

# --- answers (`what`) ---------------------------------------------------------------------

WHAT_DONE = "done"
WHAT_IN_PROGRESS = "in_progress"
WHAT_SNOOZE = "snooze"
WHAT_SNOOZE_DAY = "snooze:1d"
WHAT_SNOOZE_WEEK = "snooze:1w"
WHAT_CHANGE_DUE = "change_due"
WHAT_NOT_MINE = "not_mine"
WHAT_WONT_DO = "wont_do"
ANSWERS = (WHAT_DONE, WHAT_IN_PROGRESS, WHAT_SNOOZE, WHAT_SNOOZE_DAY, WHAT_SNOOZE_WEEK, WHAT_CHANGE_DUE, WHAT_NOT_MINE, WHAT_WONT_DO)

# --- sizes ----------------------------------------------------------------------------------

MAX_NOTE = 500  # "Not mine" note, location
MAX_REASON = 1000  # won't-do reason
MAX_TITLE_SHOWN = 300  # an item title in its own DM
MAX_TITLE_INLINE = 100  # an item title inside a sentence or a list
MAX_INCIDENT_TITLE = 150
MAX_URL = 1000
MAX_LISTED_PEOPLE = 30
MAX_FIELD_TEXT = 2000  # a section field
# Slack refuses messages whose blocks hold more than roughly 12-13k characters in all
# (msg_blocks_too_long, ../shared/slack-reference/README.md); long messages stay under this.
MAX_BLOCKS_TEXT = 11_000
MAX_LIST_SECTION = 2500  # each list of the 30-day review, so four of them fit MAX_BLOCKS_TEXT

_USER_RE = re.compile(r"[UWB][A-Z0-9]{1,39}")
_CHANNEL_RE = re.compile(r"[CGD][A-Z0-9]{1,39}")
_ID_RE = re.compile(r"\d{1,18}")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2})?")
_ESCAPED_MENTION_RE = re.compile(r"&lt;@([UW][A-Z0-9]{1,39})&gt;")
_OVERDUE_RE = re.compile(r"overdue-(\d{1,5})")
_UTC = timezone.utc

# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------


def _esc(text: Any, limit: int) -> str:
    """`text` escaped for mrkdwn, on one line, at most `limit` characters once escaped."""
    raw = " ".join(str(text or "").split())
    out = escape(truncate(raw, limit))
    n = limit
    while len(out) > limit and n > 1:
        n = max(1, n - (len(out) - limit))
        out = escape(truncate(raw, n))
    return out[:limit]


def _esc_block(text: Any, limit: int) -> str:
    """Like _esc, but keeps line breaks (reasons and notes people wrote in several lines)."""
    raw = str(text or "").strip()
    out = escape(truncate(raw, limit))
    n = limit
    while len(out) > limit and n > 1:
        n = max(1, n - (len(out) - limit))
        out = escape(truncate(raw, n))
    return out[:limit]


def _user(user_id: Any, fallback: str = "someone") -> str:
    """<@U…> for a well-formed user id, else `fallback` (never a raw, unchecked id)."""
    return f"<@{user_id}>" if isinstance(user_id, str) and _USER_RE.fullmatch(user_id) else fallback


def _user_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _USER_RE.fullmatch(value) else None


def _channel(channel_id: Any, fallback: str = "the incident channel") -> str:
    return f"<#{channel_id}>" if isinstance(channel_id, str) and _CHANNEL_RE.fullmatch(channel_id) else fallback


def _id(value: Any) -> str:
    """The id carried by a button: digits only. A missing id is a bug of the caller."""
    number = int(value)
    if number < 0:
        raise ValueError(f"negative id {value!r}")
    return str(number)


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _as_date(value: Any) -> date | None:
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


def _date_label(value: Any) -> str:
    """2026-12-10 (Thu): unambiguous everywhere, with the weekday people plan by."""
    day = _as_date(value)
    return f"{day.isoformat()} ({day.strftime('%a')})" if day else "no due date"


def _iso(value: Any) -> str:
    """2026-12-10, for dates inside a sentence."""
    day = _as_date(value)
    return day.isoformat() if day else "no date"


def _relative(day: date | None, today: date | None) -> str:
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


def _when(value: Any, fmt: str = "{date_short_pretty} {time}") -> str:
    """A <!date> token for an aware datetime (naive taken as UTC); "not set" otherwise."""
    if not isinstance(value, datetime):
        return "not set"
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return slack_date(value, fmt)


def _utc(value: Any) -> str:
    if not isinstance(value, datetime):
        return "a time not set yet"
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    return utc_label(value)


def _severity(value: Any) -> str:
    try:
        return severity_label(int(value))
    except (TypeError, ValueError):
        return ""


def _ticket(url: Any) -> str | None:
    """<url|Open ticket> for an http(s) link; None for anything else."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    url = parts.scheme.lower() + url[len(parts.scheme):]
    safe = url.replace("|", "%7C").replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|Open ticket>"


def _phrase(text: Any, limit: int = 300) -> str:
    """A phrase written by the service: escaped, but its plain user mentions kept."""
    return _ESCAPED_MENTION_RE.sub(r"<@\1>", _esc(text, limit))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT))])


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT))


def _plain(text: str) -> PlainTextObject:
    return PlainTextObject(text=text, emoji=True)


def _message(text: str, blocks: Sequence[Block]) -> dict:
    return {"text": truncate(text, MAX_FALLBACK_TEXT), "blocks": [b.to_dict() for b in blocks]}


def _modal(callback_id: str, title: str, submit: str, blocks: Sequence[Block], metadata: Mapping[str, int]) -> dict:
    view = View(
        type="modal",
        callback_id=callback_id,
        title=_plain(truncate(title, MAX_MODAL_TITLE)),
        submit=_plain(truncate(submit, MAX_MODAL_TITLE)),
        close=_plain("Cancel"),
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=list(blocks),
    )
    return view.to_dict()


def _people(user_ids: Iterable[Any], limit: int = MAX_LISTED_PEOPLE) -> str:
    ids = list(dict.fromkeys(u for u in user_ids if _user_id(u)))
    shown = ", ".join(_user(u) for u in ids[:limit])
    if len(ids) > limit:
        shown += f" and {len(ids) - limit} more"
    return shown or "nobody yet"


def _cut_mrkdwn(line: str, limit: int) -> str:
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


def _text_size(value: Any) -> int:
    """Characters of text in a rendered block (what msg_blocks_too_long counts)."""
    if isinstance(value, Mapping):
        return sum(len(v) if k == "text" and isinstance(v, str) else _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def _packed_list(heading: str, lines: Sequence[str], limit: int) -> str:
    """heading + as many lines as fit in `limit` characters, then a count of the rest."""
    text = heading
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        candidate = f"{text}\n{line}"
        if len(candidate) + (len(f"\n…and {rest} more.") if rest else 0) > limit:
            return f"{text}\n…and {len(lines) - i} more."
        text = candidate
    return text


# ---------------------------------------------------------------------------------------
# Reading button values and metadata back
# ---------------------------------------------------------------------------------------


def parse_item_value(value: Any) -> int | None:
    """The item (or incident) id a button carries; None for anything else."""
    if isinstance(value, str) and _ID_RE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def parse_snooze_value(value: Any) -> tuple[int, str] | None:
    """(item id, "1d" | "1w") from a snooze option value "12:1w"; None for anything else."""
    if not isinstance(value, str) or ":" not in value:
        return None
    head, _, length = value.partition(":")
    item_id = parse_item_value(head)
    if item_id is None or length not in SNOOZE_CHOICES:
        return None
    return item_id, length


def _metadata_id(private_metadata: Any, key: str) -> int | None:
    if not isinstance(private_metadata, str) or len(private_metadata) > 3000:
        return None
    try:
        data = json.loads(private_metadata)
    except ValueError:
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_item_id(private_metadata: Any) -> int | None:
    """The item id of an item modal's private_metadata; None if it is not there."""
    return _metadata_id(private_metadata, "item_id")


def read_incident_id(private_metadata: Any) -> int | None:
    """The incident id of the meeting modal's private_metadata; None if it is not there."""
    return _metadata_id(private_metadata, "incident_id")


# ---------------------------------------------------------------------------------------
# Action-item DMs
# ---------------------------------------------------------------------------------------


def _title(item: Mapping[str, Any], limit: int = MAX_TITLE_SHOWN) -> str:
    return _esc(item.get("title"), limit) or "(untitled action item)"


def _incident_line(item: Mapping[str, Any]) -> str:
    title = _esc(item.get("incident_title"), MAX_INCIDENT_TITLE) or "an incident"
    return f"{title} in {_channel(item.get('incident_channel'))}"


def _headline(item: Mapping[str, Any], reason: str, today: date) -> tuple[str, str]:
    """(emoji, words) saying why this DM arrives now."""
    due = _as_date(item.get("due"))
    left = (due - today).days if due and isinstance(today, date) else None
    overdue = _OVERDUE_RE.fullmatch(reason or "")
    if reason == "assigned":
        return ":clipboard:", "You own a new action item"
    if overdue or (reason not in ("before", "due") and left is not None and left < 0):
        n = int(overdue.group(1)) if overdue else -(left or 0)
        if n <= 0:
            return ":alarm_clock:", "Due today"
        return ":warning:", f"Overdue by {_days(n)}"
    if reason == "due" or left == 0:
        return ":alarm_clock:", "Due today"
    if left is not None and left > 0:
        return ":hourglass_flowing_sand:", "Due tomorrow" if left == 1 else f"Due in {left} days"
    if left is not None and left < 0:
        return ":warning:", f"Overdue by {_days(-left)}"
    return ":bell:", "Action item reminder"


def _item_fields(item: Mapping[str, Any], today: date | None) -> list[MarkdownTextObject]:
    due = _as_date(item.get("due"))
    when = _relative(due, today)
    fields = [
        _field("Incident", _incident_line(item)),
        _field("Due", _date_label(due) + (f", {when}" if when and due else "")),
        _field("Priority", escape(PRIORITIES.get(str(item.get("priority")), str(item.get("priority") or "not set")))[:100]),
        _field("Status", escape(ACTION_STATUSES.get(str(item.get("status")), str(item.get("status") or "open")))[:100]),
    ]
    kind = ACTION_TYPES.get(str(item.get("type")))
    if kind:
        fields.append(_field("Type", kind))
    ticket = _ticket(item.get("ticket_url"))
    if ticket:
        fields.append(_field("Ticket", ticket))
    return fields


def _item_buttons(item: Mapping[str, Any]) -> ActionsBlock:
    value = _id(item.get("id"))
    elements: list[Any] = [ButtonElement(text=_plain("Done"), action_id=ITEM_DONE, value=value, style="primary")]
    if item.get("status") != "in_progress":
        elements.append(ButtonElement(text=_plain("In progress"), action_id=ITEM_IN_PROGRESS, value=value))
    elements += [
        StaticSelectElement(
            action_id=ITEM_SNOOZE,
            placeholder=_plain("Snooze"),
            options=[Option(value=f"{value}:{k}", text=_plain(label)) for k, label in SNOOZE_CHOICES.items()],
        ),
        ButtonElement(text=_plain("Change due date"), action_id=ITEM_CHANGE_DUE, value=value),
        ButtonElement(text=_plain("Not mine"), action_id=ITEM_NOT_MINE, value=value),
        ButtonElement(text=_plain("Won't do"), action_id=ITEM_WONT_DO, value=value),
    ]
    return ActionsBlock(block_id=ITEM_ACTIONS_BLOCK, elements=elements)


def _priority_suffix(item: Mapping[str, Any], sep: str = " · ") -> str:
    priority = item.get("priority")
    return f"{sep}{priority}" if priority in PRIORITIES else ""


def _is_closed(item: Mapping[str, Any]) -> bool:
    return item.get("status") in ("done", "wont_do")


def _closed_message(item: Mapping[str, Any], extra: str | None) -> dict:
    """The final state of an item's DM: what was decided, no buttons."""
    title = _title(item)
    if item.get("status") == "done":
        head, fallback = ":white_check_mark: *Done — thanks!*", f"Done — thanks! {_title(item, 200)}"
    else:
        reason = _esc_block(item.get("status_note"), MAX_REASON)
        head = f":no_entry_sign: *Won't do:* {reason}" if reason else ":no_entry_sign: *Won't do*"
        fallback = f"Won't do: {_title(item, 200)}" + (f" ({_esc(item.get('status_note'), 200)})" if reason else "")
    details = f"From {_incident_line(item)} · was due {_date_label(item.get('due'))}" + _priority_suffix(item)
    blocks: list[Block] = [_section(f"{head}\n*{title}*"), _context(details)]
    if extra:
        blocks.append(_context(extra))
    return _message(fallback, blocks)


def _guidance(item: Mapping[str, Any], reason: str) -> str:
    """Which button to press, in one line."""
    start = "" if item.get("status") == "in_progress" else "*In progress* when you start, "
    if reason == "assigned":
        return f"You're the owner. Press {start}*Done* when it's finished. Not yours? Press *Not mine*."
    return "Finished? Press *Done*. Need more time? *Snooze* or *Change due date*. Not yours? *Not mine*."


def action_item_dm(item: Mapping[str, Any], *, reason: str, today: date) -> dict:
    """The owner's DM about `item`: on assignment ("assigned"), before its due date
    ("before"), on it ("due") and after it ("overdue-N"). Done and won't-do items render
    their final state, without buttons."""
    if _is_closed(item):
        return _closed_message(item, None)
    emoji, headline = _headline(item, reason, today)
    title = _title(item)
    blocks: list[Block] = [
        _section(f"{emoji} *{headline}*\n*{title}*"),
        SectionBlock(fields=_item_fields(item, today)),
        _context(_guidance(item, reason)),
        _item_buttons(item),
    ]
    return _message(f"{headline}: {_title(item, 200)}", blocks)


_ANSWERED: dict[str, str] = {
    WHAT_DONE: ":white_check_mark: Marked done by {by}",
    WHAT_IN_PROGRESS: ":hammer_and_wrench: Marked in progress by {by}",
    WHAT_SNOOZE: ":zzz: Snoozed by {by}",
    WHAT_SNOOZE_DAY: ":zzz: Snoozed for a day by {by}",
    WHAT_SNOOZE_WEEK: ":zzz: Snoozed for a week by {by}",
    WHAT_CHANGE_DUE: ":calendar: Due date moved to {due} by {by}",
    WHAT_WONT_DO: ":no_entry_sign: Marked won't do by {by}",
}


def _answered_line(item: Mapping[str, Any], by: str, what: str) -> str:
    who = _user(by)
    if what == WHAT_NOT_MINE:
        owner = item.get("owner_id")
        if _user_id(owner) and owner != by:
            return f":raising_hand: {who} handed this to {_user(owner)}"
        return f":raising_hand: {who} said this isn't theirs; {_user(item.get('commander_id'), 'the commander')} was asked to reassign it"
    template = _ANSWERED.get(what)
    if template:
        return template.format(by=who, due=_date_label(item.get("due")))
    return f":pencil2: {who} {_phrase(what) or 'updated this'}"


def action_item_answered(item: Mapping[str, Any], *, by: str, what: str) -> dict:
    """The DM after someone answered it (chat.update in place): the item as it is now, a
    line saying who did what, and the buttons while the item is still open."""
    line = _answered_line(item, by, what)
    if _is_closed(item):
        return _closed_message(item, line)
    if item.get("status") == "in_progress":
        emoji, headline = ":hammer_and_wrench:", "In progress"
    else:
        emoji, headline = ":clipboard:", "Open action item"
    blocks: list[Block] = [
        _section(f"{emoji} *{headline}*\n*{_title(item)}*"),
        SectionBlock(fields=_item_fields(item, None)),
        _context(line),
        _item_buttons(item),
    ]
    return _message(f"{headline}: {_title(item, 200)}", blocks)


def channel_update(item: Mapping[str, Any], *, by: str, what: str, note: str | None = None) -> dict:
    """The short reply in the incident channel's thread after an answer.

    `note` defaults to the item's status_note (the won't-do reason, the "Not mine" note).
    """
    who = _user(by)
    title = f"*{_title(item, MAX_TITLE_INLINE)}*"
    raw_note = item.get("status_note") if note is None else note
    said = _esc(raw_note, MAX_NOTE)
    commander = _user(item.get("commander_id"), "commander")
    if what == WHAT_DONE:
        text = f":white_check_mark: {who} marked {title} done"
    elif what == WHAT_IN_PROGRESS:
        text = f":hammer_and_wrench: {who} started on {title}"
    elif what in (WHAT_SNOOZE, WHAT_SNOOZE_DAY, WHAT_SNOOZE_WEEK):
        length = {WHAT_SNOOZE_DAY: " for a day", WHAT_SNOOZE_WEEK: " for a week"}.get(what, "")
        text = f":zzz: {who} snoozed {title}{length}" + (f" ({said})" if said and note is not None else "")
    elif what == WHAT_CHANGE_DUE:
        text = f":calendar: {who} moved the due date of {title} to {_iso(item.get('due'))}"
    elif what == WHAT_WONT_DO:
        text = f":no_entry_sign: {who} won't do {title}" + (f": {said}" if said else "")
    elif what == WHAT_NOT_MINE:
        owner = item.get("owner_id")
        if _user_id(owner) and owner != by:
            text = f":raising_hand: {who} handed {title} to {_user(owner)}" + (f" ({said})" if said else "")
        else:
            text = (
                f":raising_hand: {who} says {title} isn't theirs" + (f" ({said})" if said else "")
                + f"; {commander}, please reassign it"
            )
    else:
        text = f":pencil2: {who} {_phrase(what) or 'updated'}: {title}"
    return _message(text, [_section(text)])


# ---------------------------------------------------------------------------------------
# The item modals
# ---------------------------------------------------------------------------------------


def _item_heading(item: Mapping[str, Any], today: date | None = None) -> SectionBlock:
    due = _as_date(item.get("due"))
    when = _relative(due, today)
    return _section(
        f"*{_title(item)}*\nFrom {_incident_line(item)} · due {_date_label(due)}" + (f", {when}" if when and due else "")
    )


def change_due_modal(item: Mapping[str, Any], *, today: date) -> dict:
    """"Change due date": one required date picker, starting at the current due date."""
    due = _as_date(item.get("due"))
    blocks = [
        _item_heading(item, today),
        InputBlock(
            block_id=CHANGE_DUE_BLOCK,
            label=_plain("New due date"),
            hint=_plain("Pick the date it can really be done by. The channel sees the change."),
            element=DatePickerElement(
                action_id=CHANGE_DUE_ACTION,
                initial_date=due.isoformat() if due else None,
                placeholder=_plain("Pick a date"),
            ),
            optional=False,
        ),
    ]
    return _modal(CHANGE_DUE_CALLBACK, "Change due date", "Save", blocks, {"item_id": int(_id(item.get("id")))})


def change_due_errors(new_due: date | None, *, today: date) -> dict[str, str]:
    """`response_action: errors` for the change-due modal; empty when the date is fine."""
    if new_due is None:
        return {CHANGE_DUE_BLOCK: "Pick a date."}
    if new_due < today:
        return {CHANGE_DUE_BLOCK: "Pick today or a later date."}
    return {}


def not_mine_modal(item: Mapping[str, Any]) -> dict:
    """"Not mine": optionally who should own it, and a note for the commander."""
    commander = _user(item.get("commander_id"), "the incident commander")
    blocks = [
        _item_heading(item),
        _section(f"Pick the right owner if you know them. If not, leave it empty and {commander} will reassign it."),
        InputBlock(
            block_id=NOT_MINE_OWNER_BLOCK,
            label=_plain("Who should own it?"),
            element=UserSelectElement(action_id=NOT_MINE_OWNER_ACTION, placeholder=_plain("One person")),
            optional=True,
        ),
        InputBlock(
            block_id=NOT_MINE_NOTE_BLOCK,
            label=_plain("Note"),
            element=PlainTextInputElement(
                action_id=NOT_MINE_NOTE_ACTION,
                max_length=MAX_NOTE,
                placeholder=_plain("e.g. The payments team owns this service now"),
            ),
            optional=True,
        ),
    ]
    return _modal(NOT_MINE_CALLBACK, "Not mine", "Send", blocks, {"item_id": int(_id(item.get("id")))})


def wont_do_modal(item: Mapping[str, Any]) -> dict:
    """"Won't do": a required reason, which goes to the channel and the post-mortem."""
    blocks = [
        _item_heading(item),
        InputBlock(
            block_id=WONT_DO_BLOCK,
            label=_plain("Why won't it be done?"),
            hint=_plain("The reason is posted in the incident channel and kept in the post-mortem."),
            element=PlainTextInputElement(
                action_id=WONT_DO_ACTION,
                multiline=True,
                max_length=MAX_REASON,
                placeholder=_plain("e.g. The service is being retired in January"),
            ),
            optional=False,
        ),
    ]
    return _modal(WONT_DO_CALLBACK, "Won't do", "Close item", blocks, {"item_id": int(_id(item.get("id")))})


SNOOZE_CALLBACK = "item_snooze_modal"
SNOOZE_REASON_BLOCK = "item_snooze_reason"
SNOOZE_REASON_ACTION = "reason"


def snooze_modal(item: Mapping[str, Any], *, length: str) -> dict:
    """Snooze, chosen in the DM's select: confirm, with an optional reason for the channel."""
    label = SNOOZE_CHOICES.get(length, "a while")
    blocks = [
        _item_heading(item),
        InputBlock(
            block_id=SNOOZE_REASON_BLOCK,
            label=_plain(f"Snooze for {label}: why? (optional)"),
            hint=_plain("Shown with the snooze in the incident channel."),
            element=PlainTextInputElement(
                action_id=SNOOZE_REASON_ACTION,
                max_length=MAX_REASON,
                placeholder=_plain("e.g. Waiting for the vendor's fix"),
            ),
            optional=True,
        ),
    ]
    return _modal(SNOOZE_CALLBACK, "Snooze", "Snooze", blocks, {"item_id": int(_id(item.get("id"))), "length": length})


def read_snooze(values: Any) -> str:
    """The optional reason typed in the snooze modal; "" if none."""
    return _read_text(values, SNOOZE_REASON_BLOCK, SNOOZE_REASON_ACTION, MAX_REASON)


def _element(values: Any, block: str, action: str) -> Mapping[str, Any]:
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


def _read_text(values: Any, block: str, action: str, limit: int) -> str:
    value = _element(values, block, action).get("value")
    return value.strip()[:limit] if isinstance(value, str) else ""


def read_change_due(values: Any) -> date | None:
    """The date picked in the change-due modal; None if none (or garbage)."""
    value = _element(values, CHANGE_DUE_BLOCK, CHANGE_DUE_ACTION).get("selected_date")
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def read_not_mine(values: Any) -> tuple[str | None, str]:
    """(suggested owner's user id or None, note) from the not-mine modal."""
    owner = _user_id(_element(values, NOT_MINE_OWNER_BLOCK, NOT_MINE_OWNER_ACTION).get("selected_user"))
    return owner, _read_text(values, NOT_MINE_NOTE_BLOCK, NOT_MINE_NOTE_ACTION, MAX_NOTE)


def read_wont_do(values: Any) -> str:
    """The reason typed in the won't-do modal, stripped; "" if none."""
    return _read_text(values, WONT_DO_BLOCK, WONT_DO_ACTION, MAX_REASON)


# ---------------------------------------------------------------------------------------
# Escalations
# ---------------------------------------------------------------------------------------


def overdue_to_commander(item: Mapping[str, Any], *, overdue_days: int) -> dict:
    """DM to the incident commander: an item of their incident is late. No buttons: the
    commander follows up with the owner."""
    days = _days(max(0, int(overdue_days)))
    owner = _user(item.get("owner_id"), "its owner")
    blocks: list[Block] = [
        _section(f":warning: *An action item is {days} overdue*\n*{_title(item)}*"),
        SectionBlock(
            fields=[
                _field("Owner", owner),
                _field("Was due", _date_label(item.get("due"))),
                _field("Priority", escape(PRIORITIES.get(str(item.get("priority")), str(item.get("priority") or "not set")))[:100]),
                _field("Incident", _incident_line(item)),
            ]
        ),
        _context(
            f"You're the incident commander. {owner} has been reminded; please check in with them, "
            "or find a new owner if they can't do it."
        ),
    ]
    return _message(f"Overdue by {days}: {_title(item, 200)} (owner {owner})", blocks)


def overdue_to_channel(item: Mapping[str, Any], *, overdue_days: int) -> dict:
    """The incident channel hears about an item that is well overdue."""
    days = _days(max(0, int(overdue_days)))
    owner = _user(item.get("owner_id"), "its owner")
    text = (
        f":warning: *{_title(item, MAX_TITLE_INLINE)}* is {days} overdue "
        f"(owner {owner}, due {_iso(item.get('due'))}{_priority_suffix(item, ', ')}). "
        f"{owner}, please update it with the buttons in your DM from me, or ask here for help."
    )
    return _message(text, [_section(text)])


UNDELIVERABLE_REASONS: dict[str, str] = {
    "user_disabled": "their Slack account is deactivated",
    "account_inactive": "their Slack account is inactive",
    "user_not_found": "their Slack account no longer exists",
    "cannot_dm_bot": "the owner is a bot, not a person",
    "channel_not_found": "I can't open a direct message with them",
    "is_archived": "our direct message with them is archived",
}


def undeliverable(item: Mapping[str, Any], *, error: str) -> dict:
    """DM to the commander: the owner of an item cannot be reached, so a person must step in."""
    owner = _user(item.get("owner_id"), "its owner")
    why = UNDELIVERABLE_REASONS.get(error) or f"Slack answered `{_esc(error, 60) or 'unknown error'}`"
    blocks: list[Block] = [
        _section(f":warning: *I can't reach the owner of an action item*\n*{_title(item)}*"),
        _context(
            f"Owner {owner} · due {_iso(item.get('due'))}{_priority_suffix(item)} · {_incident_line(item)}"
        ),
        _section(f"I stopped reminding {owner}: {why}. Please find a new owner, or tell them yourself."),
    ]
    return _message(f"I can't reach the owner of {_title(item, 200)}: {why}", blocks)


# ---------------------------------------------------------------------------------------
# The review meeting
# ---------------------------------------------------------------------------------------


def _incident_title(incident: Mapping[str, Any], limit: int = MAX_INCIDENT_TITLE) -> str:
    return _esc(incident.get("title"), limit) or "this incident"


def meeting_unscheduled(incident: Mapping[str, Any]) -> dict:
    """DM to the commander while no review meeting is scheduled, with "Schedule meeting"."""
    title = _incident_title(incident)
    sev = _severity(incident.get("severity"))
    deadline = incident.get("deadline")
    by = f" Hold it by {_when(deadline)}." if isinstance(deadline, datetime) else ""
    resolved = incident.get("resolved_at")
    when = f" was resolved {_when(resolved)}" if isinstance(resolved, datetime) else " is resolved"
    blocks: list[Block] = [
        _section(
            f":calendar: *Schedule the post-mortem meeting*\n"
            f"*{title}*{f' ({sev})' if sev else ''} in {_channel(incident.get('channel'))}{when}.{by}"
        ),
        _context(
            "Press *Schedule meeting* to pick a time and who comes. I'll post it in the channel "
            "and send the draft timeline and agenda a day before."
        ),
        ActionsBlock(
            block_id="meeting_actions",
            elements=[
                ButtonElement(
                    text=_plain("Schedule meeting"), action_id=SCHEDULE_MEETING, value=_id(incident.get("id")), style="primary"
                )
            ],
        ),
    ]
    fallback = f"Schedule the post-mortem meeting for {_incident_title(incident, 200)}"
    if isinstance(deadline, datetime):
        fallback += f" by {_utc(deadline)}"
    return _message(fallback, blocks)


def meeting_modal(incident: Mapping[str, Any], *, initial_attendees: Sequence[str], timezone: str | None = None) -> dict:
    """The meeting form: date, time, attendees (required), place or link (optional).

    The time is read as the submitter's local time: Slack returns "HH:MM" without a zone,
    so the service combines it with the submitter's time zone (`timezone`, when given, is
    only named in the hint).
    """
    attendees = list(dict.fromkeys(u for u in initial_attendees if _user_id(u)))[:100]
    deadline = incident.get("deadline")
    lines = [f"*{_incident_title(incident)}*"] if incident.get("title") else []
    if isinstance(deadline, datetime):
        lines.append(f"Hold it by {_when(deadline)}.")
    lines.append("Invite the responders: they get the agenda and draft timeline a day before.")
    zone = _esc(timezone, 60) if timezone else ""
    blocks = [
        _section("\n".join(lines)),
        InputBlock(
            block_id=MEETING_DATE_BLOCK,
            label=_plain("Date"),
            element=DatePickerElement(action_id=MEETING_DATE_ACTION, placeholder=_plain("Pick a date")),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_TIME_BLOCK,
            label=_plain("Start time"),
            hint=_plain(f"In your time zone ({zone})." if zone else "In your own time zone."),
            element=TimePickerElement(action_id=MEETING_TIME_ACTION, placeholder=_plain("Pick a time")),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_ATTENDEES_BLOCK,
            label=_plain("Who should come?"),
            element=UserMultiSelectElement(
                action_id=MEETING_ATTENDEES_ACTION,
                initial_users=attendees or None,
                placeholder=_plain("Responders, the commander, the service owners"),
            ),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_LOCATION_BLOCK,
            label=_plain("Where"),
            element=PlainTextInputElement(
                action_id=MEETING_LOCATION_ACTION, max_length=MAX_NOTE, placeholder=_plain("A room, or a video call link")
            ),
            optional=True,
        ),
    ]
    return _modal(MEETING_CALLBACK, "Post-mortem meeting", "Schedule", blocks, {"incident_id": int(_id(incident.get("id")))})


def read_meeting(values: Any) -> tuple[date | None, time | None, list[str], str]:
    """(date, time, attendee user ids, place) from the meeting modal; never raises."""
    raw_day = _element(values, MEETING_DATE_BLOCK, MEETING_DATE_ACTION).get("selected_date")
    day = None
    if isinstance(raw_day, str) and len(raw_day) == 10:
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            day = None
    raw_time = _element(values, MEETING_TIME_BLOCK, MEETING_TIME_ACTION).get("selected_time")
    at = None
    match = _TIME_RE.fullmatch(raw_time) if isinstance(raw_time, str) else None
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        at = time(int(match.group(1)), int(match.group(2)))
    users = _element(values, MEETING_ATTENDEES_BLOCK, MEETING_ATTENDEES_ACTION).get("selected_users")
    attendees = list(dict.fromkeys(u for u in users if _user_id(u))) if isinstance(users, list) else []
    return day, at, attendees, _read_text(values, MEETING_LOCATION_BLOCK, MEETING_LOCATION_ACTION, MAX_NOTE)


def meeting_errors(day: date | None, at: time | None, attendees: Sequence[str], *, today: date) -> dict[str, str]:
    """`response_action: errors` for the meeting modal; empty when it can be scheduled."""
    errors: dict[str, str] = {}
    if day is None:
        errors[MEETING_DATE_BLOCK] = "Pick a date."
    elif day < today:
        errors[MEETING_DATE_BLOCK] = "Pick today or a later date."
    if at is None:
        errors[MEETING_TIME_BLOCK] = "Pick a start time."
    if not attendees:
        errors[MEETING_ATTENDEES_BLOCK] = "Invite at least one person."
    return errors


def meeting_scheduled(
    incident: Mapping[str, Any], *, at: datetime, attendees: Sequence[str], by: str, location: str = ""
) -> dict:
    """The channel's announcement of the review meeting (times in each reader's zone)."""
    title = _incident_title(incident)
    lines = [
        f":calendar: *Post-mortem meeting: {_when(at, '{date_long_pretty} at {time}')}*",
        f"For *{title}*, scheduled by {_user(by)}.",
        f"*Who:* {_people(attendees)}",
    ]
    place = _esc(location, MAX_NOTE)
    if place:
        lines.append(f"*Where:* {place}")
    blocks: list[Block] = [
        _section("\n".join(lines)),
        _context(
            "Blameless: we look at how systems and processes failed, not at who. "
            "The draft timeline and agenda come here a day before; add anything missing to the timeline now."
        ),
    ]
    return _message(f"Post-mortem meeting for {_incident_title(incident, 200)}: {_utc(at)}", blocks)


AGENDA = (
    "*Agenda*\n"
    "1. *Timeline review:* what happened, when, and what we knew at the time\n"
    "2. *Root cause:* ask \"why?\" five times, about systems, not people\n"
    "3. *What could be better:* detection, response, tools, process\n"
    "4. *What went well*\n"
    "5. *Action items:* each with one owner and a due date"
)


def _item_line(item: Mapping[str, Any], today: date | None = None) -> str:
    bits = [f"due {_date_label(item.get('due'))}"]
    due = _as_date(item.get("due"))
    if today and due and due < today and not _is_closed(item):
        bits[0] += f", {_days((today - due).days)} late"
    priority = str(item.get("priority") or "")
    if priority in PRIORITIES:
        bits.append(priority)
    status = ACTION_STATUSES.get(str(item.get("status")))
    if status:
        bits.append(status.lower())
    return f"• {_title(item, MAX_TITLE_INLINE)} — {_user(item.get('owner_id'), '_no owner_')}, {', '.join(bits)}"


def meeting_agenda(
    incident: Mapping[str, Any], *, at: datetime, timeline_lines: Sequence[str], action_items: Sequence[Mapping[str, Any]]
) -> dict:
    """Posted in the channel a day before the meeting: the agenda, the action items so far,
    and the draft timeline (lines of mrkdwn made by the caller), packed into sections as far
    as one message holds; what did not fit is counted."""
    lines = list(timeline_lines)
    actions = list(action_items)
    title = _incident_title(incident)
    action_lines = [_item_line(a) for a in actions]
    blocks: list[Block] = [
        HeaderBlock(text=_plain("Post-mortem meeting agenda")),
        _section(
            f":spiral_calendar_pad: *{title}* · meeting {_when(at)}\n"
            "Please read the draft timeline below before we meet. Missing or wrong? Reply in this thread, "
            "or add it with `/postmortem note HH:MM what happened`."
        ),
        _section(AGENDA),
        _section(
            _packed_list("*Action items so far*", action_lines, MAX_LIST_SECTION)
            if action_lines
            else "*Action items so far*\n_None yet: we'll agree them in the meeting._"
        ),
        _section(f"*Draft timeline* · {len(lines)} {'entry' if len(lines) == 1 else 'entries'}"),
    ]
    used = sum(_text_size(b.to_dict()) for b in blocks)
    block_room = MAX_MESSAGE_BLOCKS - len(blocks) - 1  # one block kept for the "not shown" note
    char_room = MAX_BLOCKS_TEXT - used - 300
    sections: list[str] = []
    chunk: list[str] = []
    size = 0
    shown = 0
    for raw in lines:
        line = _cut_mrkdwn(str(raw), MAX_SECTION_TEXT)
        joined = len("\n".join(chunk + [line]))
        if chunk and joined > MAX_SECTION_TEXT:
            sections.append("\n".join(chunk))
            chunk = []
        if not chunk and len(sections) >= block_room:
            break
        if size + len(line) + 1 > char_room:
            break
        chunk.append(line)
        size += len(line) + 1
        shown += 1
    if chunk:
        sections.append("\n".join(chunk))
    blocks += [_section(s) for s in sections]
    left_out = len(lines) - shown
    if not lines:
        blocks.append(_context("_The timeline is empty: react with :pushpin: to the messages that matter, or use `/postmortem note`._"))
    elif left_out:
        blocks.append(
            _context(
                f"{left_out} later {'entry is' if left_out == 1 else 'entries are'} not shown here "
                "(one Slack message holds only so much): the post-mortem document has the full timeline."
            )
        )
    fallback = f"Post-mortem meeting agenda for {_incident_title(incident, 200)}, meeting at {_utc(at)}"
    return _message(fallback, blocks)


def publication_request(incident: Mapping[str, Any], *, deadline: datetime) -> dict:
    """After the meeting: finish and publish the post-mortem, with the button to open it."""
    title = _incident_title(incident)
    blocks: list[Block] = [
        _section(
            f":memo: *Time to publish the post-mortem*\n*{title}* in {_channel(incident.get('channel'))}: "
            f"the review meeting is done. Add what was agreed, then press *Publish* by {_when(deadline)} "
            "so everyone can learn from it."
        ),
        ActionsBlock(
            block_id="publication_actions",
            elements=[
                ButtonElement(
                    text=_plain("Open post-mortem"), action_id=CONTINUE_POSTMORTEM, value=_id(incident.get("id")), style="primary"
                )
            ],
        ),
    ]
    return _message(f"Please publish the post-mortem of {_incident_title(incident, 200)} by {_utc(deadline)}", blocks)


def review_30_days(incident: Mapping[str, Any], *, items: Sequence[Mapping[str, Any]], today: date) -> dict:
    """Thirty days on: how the action items stand, with owners, the late ones first."""
    items = list(items)
    done = [i for i in items if i.get("status") == "done"]
    wont = [i for i in items if i.get("status") == "wont_do"]
    still = [i for i in items if not _is_closed(i)]
    overdue = [i for i in still if (_as_date(i.get("due")) or today) < today]
    open_ = [i for i in still if (_as_date(i.get("due")) or today) >= today]
    overdue.sort(key=lambda i: _as_date(i.get("due")) or today)
    counts = f"{len(done)} done · {len(open_)} open · {len(overdue)} overdue" + (f" · {len(wont)} won't do" if wont else "")
    title = _incident_title(incident)
    blocks: list[Block] = [
        HeaderBlock(text=_plain("30-day action item review")),
        _section(f":mag: *{title}* in {_channel(incident.get('channel'))}\n{counts}"),
    ]
    if not items:
        blocks.append(_section("_This post-mortem has no action items._"))
    elif not still:
        blocks.append(_section(f":tada: All {len(items)} action items are closed. Thank you!"))
    for label, group in (("Overdue", overdue), ("Open", open_), ("Done", done)):
        if group:
            lines = [_item_line(i, today) for i in group]
            blocks.append(_section(_packed_list(f"*{label}* ({len(group)})", lines, MAX_LIST_SECTION)))
    if wont:
        lines = [
            f"• {_title(i, MAX_TITLE_INLINE)} — {_esc(i.get('status_note'), 150) or '_no reason given_'}" for i in wont
        ]
        blocks.append(_section(_packed_list(f"*Won't do* ({len(wont)})", lines, MAX_LIST_SECTION)))
    if still:
        blocks.append(
            _context("Owners: update your items with the buttons in my DMs. Commander: find new owners for anything stuck.")
        )
    return _message(f"30-day review of {_incident_title(incident, 200)}: {counts}", blocks)
