"""The post-mortem form read back: its state as a PostmortemContent, its action rows added
and removed, its labels for the quality checks, and the errors that block a submission.

Pure functions only, that never raise whatever Slack (or a forger) sends; the form itself
and its block ids are in bot/ui/postmortem_modal.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from bot.links import is_http_url
from bot.postmortem_content import (
    ACTION_TYPES,
    CAUSE_CATEGORIES,
    MAX_WHYS,
    PRIORITIES,
    ActionItemDraft,
    Impact,
    PostmortemContent,
)
from bot.ui.postmortem_modal import (
    FIELD_LABELS,
    MAX_ACTION_ROWS,
    ROW_PARTS,
    TEXT_FIELDS,
    block_id,
    field_text,
    parse_block_id,
    row_block_id,
    visible_indices,
    visible_rows,
)
from bot.ui.text import truncate

_ROW_FIELD_RE = re.compile(r"ai_(?P<key>[A-Za-z0-9-]{1,64})_(?P<part>" + "|".join(ROW_PARTS) + r")")
_SEVERITY_RE = re.compile(r"SEV([1-4])")


# ---------------------------------------------------------------------------------------
# Reading view.state.values back
# ---------------------------------------------------------------------------------------


def _index_state(values: Any) -> dict[str, dict[str, Any]]:
    """field name -> the element state of its block, whatever revision suffix the id carries.

    If a field appears under several revisions (should not happen), the highest wins.
    """
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    if not isinstance(values, Mapping):
        return {}
    for raw_id, actions in values.items():
        if not isinstance(raw_id, str) or not isinstance(actions, Mapping):
            continue
        field, rev = parse_block_id(raw_id)
        element = next((v for v in actions.values() if isinstance(v, Mapping)), None)
        if element is None:
            continue
        rank = -1 if rev is None else rev
        if field not in found or rank >= found[field][0]:
            found[field] = (rank, dict(element))
    return {field: element for field, (_, element) in found.items()}


def _text(element: Mapping[str, Any]) -> str:
    value = element.get("value")
    return value if isinstance(value, str) else ""


def _selected_value(element: Mapping[str, Any]) -> str | None:
    option = element.get("selected_option")
    if isinstance(option, Mapping):
        value = option.get("value")
        if isinstance(value, str):
            return value
    return None


def _selected_user(element: Mapping[str, Any]) -> str | None:
    user = element.get("selected_user")
    return user if isinstance(user, str) and user else None


def _selected_date(element: Mapping[str, Any]) -> date | None:
    value = element.get("selected_date")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _read(
    state: Mapping[str, dict[str, Any]], field: str, reader: Callable[[Mapping[str, Any]], Any], fallback: Any
) -> Any:
    """The value of `field` if its block is in the state (empty -> ""/None), else `fallback`."""
    element = state.get(field)
    return fallback if element is None else reader(element)


def parse_state(values: dict[str, Any], previous: PostmortemContent) -> PostmortemContent:
    """A new PostmortemContent from a modal's view.state.values; never raises.

    A block present in the state is authoritative (an empty input gives "" or None); a block
    missing from the state keeps the value of `previous`. Action rows are the rows whose
    blocks are in the state, with their keys, in the order of `previous` (then any other
    row in state order); rows of `previous` the modal did not show (visible_rows) are kept.
    """
    state = _index_state(values)
    prev_impact = previous.impact if isinstance(previous.impact, Impact) else Impact()

    def text(field: str) -> str:
        return str(_read(state, field, _text, field_text(previous, field)))

    severity_value = _read(state, "pm_severity", _selected_value, None)
    match = _SEVERITY_RE.fullmatch(severity_value) if severity_value else None
    severity = int(match.group(1)) if match else previous.severity

    sla_previous = prev_impact.sla_breached
    sla_element = state.get("pm_sla_breached")
    if sla_element is None:
        sla = sla_previous
    else:
        sla = {"yes": True, "no": False}.get(_selected_value(sla_element) or "")

    category = _read(state, "pm_cause_category", _selected_value, previous.cause_category)
    if category not in CAUSE_CATEGORIES:
        category = None

    previous_whys = [w if isinstance(w, str) else "" for w in list(previous.whys or [])]
    whys = []
    for i in range(1, MAX_WHYS + 1):
        fallback = previous_whys[i - 1] if i <= len(previous_whys) else ""
        whys.append(_read(state, f"pm_why_{i}", _text, fallback))
    while whys and not whys[-1].strip():
        whys.pop()

    return PostmortemContent(
        title=text("pm_title"),
        severity=severity,
        summary=text("pm_summary"),
        impact=Impact(
            users_affected=text("pm_users_affected"),
            duration=text("pm_impact_duration"),
            revenue=text("pm_revenue"),
            sla_breached=sla,
            support_tickets=text("pm_support_tickets"),
        ),
        detection_how=text("pm_detection_how"),
        detection_time=text("pm_detection_time"),
        root_cause=text("pm_root_cause"),
        whys=whys,
        factors_technical=text("pm_factors_technical"),
        factors_process=text("pm_factors_process"),
        factors_human=text("pm_factors_human"),
        cause_category=category,
        went_well=text("pm_went_well"),
        went_wrong=text("pm_went_wrong"),
        lucky=text("pm_lucky"),
        lessons=text("pm_lessons"),
        action_items=_parse_rows(state, previous),
    )


def _parse_rows(state: Mapping[str, dict[str, Any]], previous: PostmortemContent) -> list[ActionItemDraft]:
    parts_by_key: dict[str, dict[str, dict[str, Any]]] = {}
    for field, element in state.items():
        match = _ROW_FIELD_RE.fullmatch(field)
        if match:
            parts_by_key.setdefault(match["key"], {})[match["part"]] = element

    previous_rows = list(previous.action_items or [])
    visible = visible_indices(previous)
    by_key = {previous_rows[i].key: previous_rows[i] for i in visible}
    order = {key: n for n, key in enumerate(by_key)}
    keys = sorted(parts_by_key, key=lambda k: order.get(k, len(order)))  # stable: new keys keep state order

    rows = []
    for key in keys:
        parts = parts_by_key[key]
        old = by_key.get(key) or ActionItemDraft(key=key)

        def read(
            part: str, reader: Callable[[Mapping[str, Any]], Any], fallback: Any, parts: dict[str, Any] = parts
        ) -> Any:
            element = parts.get(part)
            return fallback if element is None else reader(element)

        priority = read("priority", _selected_value, old.priority)
        kind = read("type", _selected_value, old.type)
        rows.append(
            ActionItemDraft(
                key=key,
                title=read("title", _text, old.title),
                owner=read("owner", _selected_user, old.owner),
                due=read("due", _selected_date, old.due),
                priority=priority if priority in PRIORITIES else _DEFAULT_ROW.priority,
                type=kind if kind in ACTION_TYPES else _DEFAULT_ROW.type,
                ticket_url=read("ticket", _text, old.ticket_url),
            )
        )
    shown = set(visible)
    hidden = [replace(row) for i, row in enumerate(previous_rows) if i not in shown and row.key not in parts_by_key]
    return rows + hidden


_DEFAULT_ROW = ActionItemDraft(key="default")


# ---------------------------------------------------------------------------------------
# Adding and removing action rows
# ---------------------------------------------------------------------------------------


def with_row_added(content: PostmortemContent) -> PostmortemContent:
    """A copy of `content` with one more, empty action row (unchanged at MAX_ACTION_ROWS rows)."""
    rows = list(content.action_items)
    if len(rows) < MAX_ACTION_ROWS:
        rows.append(ActionItemDraft())
    return replace(content, action_items=rows)


def with_row_removed(content: PostmortemContent, key: str) -> PostmortemContent:
    """A copy of `content` without the (first) action row whose key is `key`."""
    rows = list(content.action_items)
    for i, row in enumerate(rows):
        if row.key == key:
            del rows[i]
            break
    return replace(content, action_items=rows)


_CONTENT_FIELDS = {path: field for field, (path, _) in TEXT_FIELDS.items()}


def field_label(field: str, content: PostmortemContent) -> str:
    """The modal's label for a content field id as bot/quality.py names them.

    "root_cause" -> "Root cause", "impact.duration" -> "Duration of impact", "whys" -> "The 5
    whys", "action_items" -> "Action items", "action_item:<key>" -> "Action item 2" (its
    place in the modal; "An action item" for a row the modal does not show).
    """
    if not isinstance(field, str):
        return "Post-mortem"
    if field in _CONTENT_FIELDS:
        return FIELD_LABELS[_CONTENT_FIELDS[field]]
    if f"pm_{field}" in FIELD_LABELS:
        return FIELD_LABELS[f"pm_{field}"]
    if field == "whys":
        return "The 5 whys"
    if field == "action_items":
        return "Action items"
    if field.startswith("action_item:"):
        key = field.partition(":")[2]
        for number, row in enumerate(visible_rows(content), start=1):
            if row.key == key:
                title = (row.title or "").strip()
                return f"Action item {number}" + (f" ({truncate(title, 60)})" if title else "")
        return "An action item"
    return field.replace("impact.", "").replace("_", " ").capitalize()


# ---------------------------------------------------------------------------------------
# Field errors (blocking) and warnings (advisory)
# ---------------------------------------------------------------------------------------

ROOT_CAUSE_REQUIRED = "SEV1 and SEV2 post-mortems need a root cause; write what you know so far."
ITEM_TITLE_MISSING = "Say what will change, in a short title, or remove this action item."
OWNER_MISSING = "Pick one person who owns this action item."
OWNER_NOT_PERSON = "Pick a person: this user {reason}. Action items need one human owner."
DUE_MISSING = "Pick a due date for this action item."
DUE_IN_PAST = "The due date is in the past; pick today or later."
TICKET_NOT_URL = "Paste the ticket's full http:// or https:// link, or leave it empty."
MAX_TICKET_URL = 500  # what action_items.ticket_url holds; Slack's url input has no max_length
TICKET_TOO_LONG = f"That link is longer than {MAX_TICKET_URL} characters; paste the ticket's short link."


def field_errors(
    content: PostmortemContent,
    *,
    today: date,
    severity: int,
    not_people: Mapping[str, str],
    revision: int,
) -> dict[str, str]:
    """Blocking problems, as Slack's `{"response_action": "errors", "errors": ...}` mapping.

    Keys are the block ids of the view at `revision`; only rows the modal shows are checked
    (an error for a block that is not in the view would be rejected by Slack). Blank rows
    are ignored: the service drops them.
    """
    errors: dict[str, str] = {}
    if severity in (1, 2) and not (content.root_cause or "").strip():
        errors[block_id("pm_root_cause", revision)] = ROOT_CAUSE_REQUIRED
    for row in visible_rows(content):
        if row.is_blank():
            continue
        key = row.key
        if not (row.title or "").strip():
            errors[row_block_id(key, "title", revision)] = ITEM_TITLE_MISSING
        if not row.owner:
            errors[row_block_id(key, "owner", revision)] = OWNER_MISSING
        elif row.owner in not_people:
            reason = (not_people[row.owner] or "is not a person").strip().rstrip(".")
            errors[row_block_id(key, "owner", revision)] = OWNER_NOT_PERSON.format(reason=reason)
        if row.due is None:
            errors[row_block_id(key, "due", revision)] = DUE_MISSING
        elif row.due < today:
            errors[row_block_id(key, "due", revision)] = DUE_IN_PAST
        if (row.ticket_url or "").strip() and not is_http_url(row.ticket_url):
            errors[row_block_id(key, "ticket", revision)] = TICKET_NOT_URL
        elif len((row.ticket_url or "").strip()) > MAX_TICKET_URL:
            errors[row_block_id(key, "ticket", revision)] = TICKET_TOO_LONG
    return errors
