"""Action-item messages: the owner's DM and its answers, the item modals, and escalations.

Pure builders (no Slack calls, no database), each returning chat.postMessage /
chat.update arguments ({"text", "blocks"}) or a views.open `view`, within Slack's limits.
Every message is written for someone woken at 3 a.m.: one headline saying what it is,
the facts, and which button to press. The item is an ActionItemView (bot/views.py); its
values are rendered defensively ("not set", never raised on).

Interactivity, for the listeners:
- Buttons of an item DM (block ITEM_ACTIONS_BLOCK) have action ids ITEM_DONE,
  ITEM_IN_PROGRESS, ITEM_CHANGE_DUE, ITEM_NOT_MINE, ITEM_WONT_DO and value str(item id);
  `parse_item_value` reads it back. The ITEM_SNOOZE static select has an option per
  schedule.SNOOZES key, valued f"{item_id}:1d"; `parse_snooze_value` gives (item id, "1d").
- Modals: CHANGE_DUE_CALLBACK, NOT_MINE_CALLBACK, WONT_DO_CALLBACK, SNOOZE_CALLBACK
  (private_metadata {"item_id": id}, read with `read_item_id`). Their inputs have fixed
  block ids (the *_BLOCK constants) and action ids (the *_ACTION constants);
  `read_change_due`, `read_not_mine`, `read_wont_do` and `read_snooze` read
  view.state.values and never raise.
- `what`, for action_item_answered / channel_update, is one of the WHAT_* answers
  (a snooze's is `snooze_answer(key)`, "snooze:1d"). The details come from the item as it
  is after the answer (new due date, new owner, status_note). Any other string is shown
  as a phrase ("@bob <what>: *title*"), escaped except for plain user mentions (<@U123>).

Escaping: see bot/ui/text.py.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DatePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)

from bot.links import split_http_url
from bot.nudge_calendar import SNOOZES
from bot.postmortem_content import ACTION_STATUSES, ACTION_TYPES, PRIORITIES
from bot.ui.text import (
    MAX_INCIDENT_TITLE,
    MAX_NOTE,
    MAX_TITLE_INLINE,
    as_date,
    button_value,
    channel_link,
    context,
    date_label,
    days_text,
    element_state,
    escape,
    escape_line,
    escape_lines,
    field,
    iso_date,
    mention,
    message,
    metadata_id,
    modal,
    phrase,
    plain,
    read_text,
    relative_day,
    section,
    valid_user_id,
)
from bot.views import ActionItemView

# --- action ids, block ids, callback ids ------------------------------------------------

ITEM_DONE = "item_done"
ITEM_IN_PROGRESS = "item_in_progress"
ITEM_SNOOZE = "item_snooze"
ITEM_CHANGE_DUE = "item_change_due"
ITEM_NOT_MINE = "item_not_mine"
ITEM_WONT_DO = "item_wont_do"
ITEM_ACTIONS_BLOCK = "item_actions"

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

SNOOZE_CALLBACK = "item_snooze_modal"
SNOOZE_REASON_BLOCK = "item_snooze_reason"
SNOOZE_REASON_ACTION = "reason"

# --- answers (`what`) ---------------------------------------------------------------------

WHAT_DONE = "done"
WHAT_IN_PROGRESS = "in_progress"
WHAT_SNOOZE = "snooze"
WHAT_CHANGE_DUE = "change_due"
WHAT_NOT_MINE = "not_mine"
WHAT_WONT_DO = "wont_do"


def snooze_answer(key: str) -> str:
    """The `what` of a snooze for SNOOZES[key]: "snooze:1d"."""
    return f"{WHAT_SNOOZE}:{key}"


WHAT_SNOOZE_DAY = snooze_answer("1d")
WHAT_SNOOZE_WEEK = snooze_answer("1w")

# --- sizes ----------------------------------------------------------------------------------

MAX_REASON = 1000  # won't-do reason
MAX_TITLE_SHOWN = 300  # an item title in its own DM
MAX_URL = 1000

_ID_RE = re.compile(r"\d{1,18}")
_OVERDUE_RE = re.compile(r"overdue-(\d{1,5})")


# ---------------------------------------------------------------------------------------
# Reading button values and metadata back
# ---------------------------------------------------------------------------------------


def parse_item_value(value: Any) -> int | None:
    """The item (or incident) id a button carries; None for anything else."""
    if isinstance(value, str) and _ID_RE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def parse_snooze_value(value: Any) -> tuple[int, str] | None:
    """(item id, a SNOOZES key) from a snooze option value "12:1w"; None for anything else."""
    if not isinstance(value, str) or ":" not in value:
        return None
    head, _, length = value.partition(":")
    item_id = parse_item_value(head)
    if item_id is None or length not in SNOOZES:
        return None
    return item_id, length


def read_item_id(private_metadata: Any) -> int | None:
    """The item id of an item modal's private_metadata; None if it is not there."""
    return metadata_id(private_metadata, "item_id")


# ---------------------------------------------------------------------------------------
# Action-item DMs
# ---------------------------------------------------------------------------------------


def item_title(item: ActionItemView, limit: int = MAX_TITLE_SHOWN) -> str:
    """The item's title as its messages show it: escaped, on one line, cut to `limit`."""
    return escape_line(item.title, limit) or "(untitled action item)"


def _incident_line(item: ActionItemView) -> str:
    title = escape_line(item.incident_title, MAX_INCIDENT_TITLE) or "an incident"
    return f"{title} in {channel_link(item.incident_channel)}"


def incident_line(item: ActionItemView) -> str:
    """The item's incident: its title in its channel."""
    return _incident_line(item)


def _ticket(url: Any, key: str | None = None) -> str | None:
    """<url|KEY> (or <url|Open ticket>) for an http(s) link (bot/links.py) short enough for a DM; None
    for anything else."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        return None
    parts = split_http_url(url)
    if parts is None:
        return None
    url = parts.scheme.lower() + url[len(parts.scheme) :]
    safe = url.replace("|", "%7C").replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E")
    label = escape(key)[:64] if key else "Open ticket"
    return f"<{safe}|{label}>"


ticket_link = _ticket  # the summary's action-item lines use it too


def _headline(item: ActionItemView, reason: str, today: date) -> tuple[str, str]:
    """(emoji, words) saying why this DM arrives now."""
    due = as_date(item.due)
    left = (due - today).days if due and isinstance(today, date) else None
    overdue = _OVERDUE_RE.fullmatch(reason or "")
    if reason == "assigned":
        return ":clipboard:", "You own a new action item"
    if overdue or (reason not in ("before", "due") and left is not None and left < 0):
        n = int(overdue.group(1)) if overdue else -(left or 0)
        if n <= 0:
            return ":alarm_clock:", "Due today"
        return ":warning:", f"Overdue by {days_text(n)}"
    if reason == "due" or left == 0:
        return ":alarm_clock:", "Due today"
    if left is not None and left > 0:
        return ":hourglass_flowing_sand:", "Due tomorrow" if left == 1 else f"Due in {left} days"
    if left is not None and left < 0:
        return ":warning:", f"Overdue by {days_text(-left)}"
    return ":bell:", "Action item reminder"


def _priority_label(item: ActionItemView) -> str:
    return escape(PRIORITIES.get(str(item.priority), str(item.priority or "not set")))[:100]


def _item_fields(item: ActionItemView, today: date | None) -> list[MarkdownTextObject]:
    due = as_date(item.due)
    when = relative_day(due, today)
    fields = [
        field("Incident", _incident_line(item)),
        field("Due", date_label(due) + (f", {when}" if when and due else "")),
        field("Priority", _priority_label(item)),
        field("Status", escape(ACTION_STATUSES.get(str(item.status), str(item.status or "open")))[:100]),
    ]
    kind = ACTION_TYPES.get(str(item.type))
    if kind:
        fields.append(field("Type", kind))
    ticket = _ticket(item.ticket_url, item.ticket_key)
    if ticket:
        fields.append(field("Ticket", ticket))
    return fields


def item_buttons(item: ActionItemView, block_id: str = ITEM_ACTIONS_BLOCK) -> ActionsBlock:
    """The answers to an open item (Done, In progress, Snooze...): its DM's, and App Home's
    (where each item's block gets its own `block_id`: block ids are unique within a view)."""
    value = button_value(item.id)
    elements: list[Any] = [ButtonElement(text=plain("Done"), action_id=ITEM_DONE, value=value, style="primary")]
    if item.status != "in_progress":
        elements.append(ButtonElement(text=plain("In progress"), action_id=ITEM_IN_PROGRESS, value=value))
    elements += [
        StaticSelectElement(
            action_id=ITEM_SNOOZE,
            placeholder=plain("Snooze"),
            options=[Option(value=f"{value}:{key}", text=plain(snooze.label)) for key, snooze in SNOOZES.items()],
        ),
        ButtonElement(text=plain("Change due date"), action_id=ITEM_CHANGE_DUE, value=value),
        ButtonElement(text=plain("Not mine"), action_id=ITEM_NOT_MINE, value=value),
        ButtonElement(text=plain("Won't do"), action_id=ITEM_WONT_DO, value=value),
    ]
    return ActionsBlock(block_id=block_id, elements=elements)


def _priority_suffix(item: ActionItemView, sep: str = " · ") -> str:
    """ " · P1" when the item has a known priority, else ""."""
    priority = item.priority
    return f"{sep}{priority}" if priority in PRIORITIES else ""


def _closed_message(item: ActionItemView, extra: str | None) -> dict[str, Any]:
    """The final state of an item's DM: what was decided, no buttons."""
    title = item_title(item)
    if item.status == "done":
        head, fallback = ":white_check_mark: *Done — thanks!*", f"Done — thanks! {item_title(item, 200)}"
    else:
        reason = escape_lines(item.status_note, MAX_REASON)
        head = f":no_entry_sign: *Won't do:* {reason}" if reason else ":no_entry_sign: *Won't do*"
        fallback = f"Won't do: {item_title(item, 200)}" + (f" ({escape_line(item.status_note, 200)})" if reason else "")
    details = f"From {_incident_line(item)} · was due {date_label(item.due)}" + _priority_suffix(item)
    blocks: list[Block] = [section(f"{head}\n*{title}*"), context(details)]
    if extra:
        blocks.append(context(extra))
    return message(fallback, blocks)


def _guidance(item: ActionItemView, reason: str) -> str:
    """Which button to press, in one line."""
    start = "" if item.status == "in_progress" else "*In progress* when you start, "
    if reason == "assigned":
        return f"You're the owner. Press {start}*Done* when it's finished. Not yours? Press *Not mine*."
    return "Finished? Press *Done*. Need more time? *Snooze* or *Change due date*. Not yours? *Not mine*."


def action_item_dm(item: ActionItemView, *, reason: str, today: date) -> dict[str, Any]:
    """The owner's DM about `item`: on assignment ("assigned"), before its due date
    ("before"), on it ("due") and after it ("overdue-N"). Done and won't-do items render
    their final state, without buttons."""
    if item.closed:
        return _closed_message(item, None)
    emoji, headline = _headline(item, reason, today)
    title = item_title(item)
    blocks: list[Block] = [
        section(f"{emoji} *{headline}*\n*{title}*"),
        SectionBlock(fields=_item_fields(item, today)),
        context(_guidance(item, reason)),
        item_buttons(item),
    ]
    return message(f"{headline}: {item_title(item, 200)}", blocks)


_ANSWERED: dict[str, str] = {
    WHAT_DONE: ":white_check_mark: Marked done by {by}",
    WHAT_IN_PROGRESS: ":hammer_and_wrench: Marked in progress by {by}",
    WHAT_SNOOZE: ":zzz: Snoozed by {by}",
    **{snooze_answer(key): f":zzz: Snoozed for {snooze.phrase} by {{by}}" for key, snooze in SNOOZES.items()},
    WHAT_CHANGE_DUE: ":calendar: Due date moved to {due} by {by}",
    WHAT_WONT_DO: ":no_entry_sign: Marked won't do by {by}",
}
# How long each snooze answer snoozed for, in a sentence: " for a day".
_SNOOZED_FOR: dict[str, str] = {snooze_answer(key): f" for {snooze.phrase}" for key, snooze in SNOOZES.items()}


def _answered_line(item: ActionItemView, by: str, what: str) -> str:
    who = mention(by)
    if what == WHAT_NOT_MINE:
        owner = item.owner_id
        if valid_user_id(owner) and owner != by:
            return f":raising_hand: {who} handed this to {mention(owner)}"
        return f":raising_hand: {who} said this isn't theirs; {mention(item.commander_id, 'the commander')} was asked to reassign it"
    template = _ANSWERED.get(what)
    if template:
        return template.format(by=who, due=date_label(item.due))
    return f":pencil2: {who} {phrase(what) or 'updated this'}"


def action_item_answered(item: ActionItemView, *, by: str, what: str) -> dict[str, Any]:
    """The DM after someone answered it (chat.update in place): the item as it is now, a
    line saying who did what, and the buttons while the item is still open."""
    line = _answered_line(item, by, what)
    if item.closed:
        return _closed_message(item, line)
    if item.status == "in_progress":
        emoji, headline = ":hammer_and_wrench:", "In progress"
    else:
        emoji, headline = ":clipboard:", "Open action item"
    blocks: list[Block] = [
        section(f"{emoji} *{headline}*\n*{item_title(item)}*"),
        SectionBlock(fields=_item_fields(item, None)),
        context(line),
        item_buttons(item),
    ]
    return message(f"{headline}: {item_title(item, 200)}", blocks)


def channel_update(item: ActionItemView, *, by: str, what: str, note: str | None = None) -> dict[str, Any]:
    """The short reply in the incident channel's thread after an answer.

    `note` defaults to the item's status_note (the won't-do reason, the "Not mine" note).
    """
    who = mention(by)
    title = f"*{item_title(item, MAX_TITLE_INLINE)}*"
    raw_note = item.status_note if note is None else note
    said = escape_line(raw_note, MAX_NOTE)
    commander = mention(item.commander_id, "commander")
    if what == WHAT_DONE:
        text = f":white_check_mark: {who} marked {title} done"
    elif what == WHAT_IN_PROGRESS:
        text = f":hammer_and_wrench: {who} started on {title}"
    elif what == WHAT_SNOOZE or what in _SNOOZED_FOR:
        length = _SNOOZED_FOR.get(what, "")
        text = f":zzz: {who} snoozed {title}{length}" + (f" ({said})" if said and note is not None else "")
    elif what == WHAT_CHANGE_DUE:
        text = f":calendar: {who} moved the due date of {title} to {iso_date(item.due)}"
    elif what == WHAT_WONT_DO:
        text = f":no_entry_sign: {who} won't do {title}" + (f": {said}" if said else "")
    elif what == WHAT_NOT_MINE:
        owner = item.owner_id
        if valid_user_id(owner) and owner != by:
            text = f":raising_hand: {who} handed {title} to {mention(owner)}" + (f" ({said})" if said else "")
        else:
            text = (
                f":raising_hand: {who} says {title} isn't theirs"
                + (f" ({said})" if said else "")
                + f"; {commander}, please reassign it"
            )
    else:
        text = f":pencil2: {who} {phrase(what) or 'updated'}: {title}"
    return message(text, [section(text)])


# ---------------------------------------------------------------------------------------
# The item modals
# ---------------------------------------------------------------------------------------


def _item_heading(item: ActionItemView, today: date | None = None) -> SectionBlock:
    due = as_date(item.due)
    when = relative_day(due, today)
    return section(
        f"*{item_title(item)}*\nFrom {_incident_line(item)} · due {date_label(due)}"
        + (f", {when}" if when and due else "")
    )


def _item_metadata(item: ActionItemView) -> dict[str, Any]:
    return {"item_id": int(button_value(item.id))}


def change_due_modal(item: ActionItemView, *, today: date | None) -> dict[str, Any]:
    """ "Change due date": one required date picker, starting at the current due date."""
    due = as_date(item.due)
    blocks = [
        _item_heading(item, today),
        InputBlock(
            block_id=CHANGE_DUE_BLOCK,
            label=plain("New due date"),
            hint=plain("Pick the date it can really be done by. The channel sees the change."),
            element=DatePickerElement(
                action_id=CHANGE_DUE_ACTION,
                initial_date=due.isoformat() if due else None,
                placeholder=plain("Pick a date"),
            ),
            optional=False,
        ),
    ]
    return modal(CHANGE_DUE_CALLBACK, "Change due date", "Save", blocks, _item_metadata(item))


def change_due_errors(new_due: date | None, *, today: date) -> dict[str, str]:
    """`response_action: errors` for the change-due modal; empty when the date is fine."""
    if new_due is None:
        return {CHANGE_DUE_BLOCK: "Pick a date."}
    if new_due < today:
        return {CHANGE_DUE_BLOCK: "Pick today or a later date."}
    return {}


def not_mine_modal(item: ActionItemView) -> dict[str, Any]:
    """ "Not mine": optionally who should own it, and a note for the commander."""
    commander = mention(item.commander_id, "the incident commander")
    blocks = [
        _item_heading(item),
        section(f"Pick the right owner if you know them. If not, leave it empty and {commander} will reassign it."),
        InputBlock(
            block_id=NOT_MINE_OWNER_BLOCK,
            label=plain("Who should own it?"),
            element=UserSelectElement(action_id=NOT_MINE_OWNER_ACTION, placeholder=plain("One person")),
            optional=True,
        ),
        InputBlock(
            block_id=NOT_MINE_NOTE_BLOCK,
            label=plain("Note"),
            element=PlainTextInputElement(
                action_id=NOT_MINE_NOTE_ACTION,
                max_length=MAX_NOTE,
                placeholder=plain("e.g. The payments team owns this service now"),
            ),
            optional=True,
        ),
    ]
    return modal(NOT_MINE_CALLBACK, "Not mine", "Send", blocks, _item_metadata(item))


def wont_do_modal(item: ActionItemView) -> dict[str, Any]:
    """ "Won't do": a required reason, which goes to the channel and the post-mortem."""
    blocks = [
        _item_heading(item),
        InputBlock(
            block_id=WONT_DO_BLOCK,
            label=plain("Why won't it be done?"),
            hint=plain("The reason is posted in the incident channel and kept in the post-mortem."),
            element=PlainTextInputElement(
                action_id=WONT_DO_ACTION,
                multiline=True,
                max_length=MAX_REASON,
                placeholder=plain("e.g. The service is being retired in January"),
            ),
            optional=False,
        ),
    ]
    return modal(WONT_DO_CALLBACK, "Won't do", "Close item", blocks, _item_metadata(item))


def snooze_modal(item: ActionItemView, *, length: str) -> dict[str, Any]:
    """Snooze, chosen in the DM's select: confirm, with an optional reason for the channel."""
    label = SNOOZES[length].label if length in SNOOZES else "a while"
    blocks = [
        _item_heading(item),
        InputBlock(
            block_id=SNOOZE_REASON_BLOCK,
            label=plain(f"Snooze for {label}: why? (optional)"),
            hint=plain("Shown with the snooze in the incident channel."),
            element=PlainTextInputElement(
                action_id=SNOOZE_REASON_ACTION,
                max_length=MAX_REASON,
                placeholder=plain("e.g. Waiting for the vendor's fix"),
            ),
            optional=True,
        ),
    ]
    return modal(SNOOZE_CALLBACK, "Snooze", "Snooze", blocks, {**_item_metadata(item), "length": length})


def read_snooze(values: Any) -> str:
    """The optional reason typed in the snooze modal; "" if none."""
    return read_text(values, SNOOZE_REASON_BLOCK, SNOOZE_REASON_ACTION, MAX_REASON)


def read_change_due(values: Any) -> date | None:
    """The date picked in the change-due modal; None if none (or garbage)."""
    value = element_state(values, CHANGE_DUE_BLOCK, CHANGE_DUE_ACTION).get("selected_date")
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def read_not_mine(values: Any) -> tuple[str | None, str]:
    """(suggested owner's user id or None, note) from the not-mine modal."""
    owner = valid_user_id(element_state(values, NOT_MINE_OWNER_BLOCK, NOT_MINE_OWNER_ACTION).get("selected_user"))
    return owner, read_text(values, NOT_MINE_NOTE_BLOCK, NOT_MINE_NOTE_ACTION, MAX_NOTE)


def read_wont_do(values: Any) -> str:
    """The reason typed in the won't-do modal, stripped; "" if none."""
    return read_text(values, WONT_DO_BLOCK, WONT_DO_ACTION, MAX_REASON)


# ---------------------------------------------------------------------------------------
# Escalations
# ---------------------------------------------------------------------------------------


def overdue_to_commander(item: ActionItemView, *, overdue_days: int) -> dict[str, Any]:
    """DM to the incident commander: an item of their incident is late. No buttons: the
    commander follows up with the owner."""
    days = days_text(max(0, int(overdue_days)))
    owner = mention(item.owner_id, "its owner")
    blocks: list[Block] = [
        section(f":warning: *An action item is {days} overdue*\n*{item_title(item)}*"),
        SectionBlock(
            fields=[
                field("Owner", owner),
                field("Was due", date_label(item.due)),
                field("Priority", _priority_label(item)),
                field("Incident", _incident_line(item)),
            ]
        ),
        context(
            f"You're the incident commander. {owner} has been reminded; please check in with them, "
            "or find a new owner if they can't do it."
        ),
    ]
    return message(f"Overdue by {days}: {item_title(item, 200)} (owner {owner})", blocks)


def overdue_to_channel(item: ActionItemView, *, overdue_days: int) -> dict[str, Any]:
    """The incident channel hears about an item that is well overdue."""
    days = days_text(max(0, int(overdue_days)))
    owner = mention(item.owner_id, "its owner")
    text = (
        f":warning: *{item_title(item, MAX_TITLE_INLINE)}* is {days} overdue "
        f"(owner {owner}, due {iso_date(item.due)}{_priority_suffix(item, ', ')}). "
        f"{owner}, please update it with the buttons in your DM from me, or ask here for help."
    )
    return message(text, [section(text)])


UNDELIVERABLE_REASONS: dict[str, str] = {
    "user_disabled": "their Slack account is deactivated",
    "account_inactive": "their Slack account is inactive",
    "user_not_found": "their Slack account no longer exists",
    "cannot_dm_bot": "the owner is a bot, not a person",
    "channel_not_found": "I can't open a direct message with them",
    "is_archived": "our direct message with them is archived",
}


def undeliverable(item: ActionItemView, *, error: str) -> dict[str, Any]:
    """DM to the commander: the owner of an item cannot be reached, so a person must step in."""
    owner = mention(item.owner_id, "its owner")
    why = UNDELIVERABLE_REASONS.get(error) or f"Slack answered `{escape_line(error, 60) or 'unknown error'}`"
    blocks: list[Block] = [
        section(f":warning: *I can't reach the owner of an action item*\n*{item_title(item)}*"),
        context(f"Owner {owner} · due {iso_date(item.due)}{_priority_suffix(item)} · {_incident_line(item)}"),
        section(f"I stopped reminding {owner}: {why}. Please find a new owner, or tell them yourself."),
    ]
    return message(f"I can't reach the owner of {item_title(item, 200)}: {why}", blocks)
