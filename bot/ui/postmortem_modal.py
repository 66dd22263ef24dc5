"""The post-mortem form: its blocks, built from a PostmortemContent, and its block ids.

Pure functions only (no Slack calls, no database); bot/ui/postmortem_state.py reads the
form back and checks it. The flow the service follows:

- open: `postmortem_modal(stored_content, incident_id=..., context_line=..., revision=r)`.
  The draft itself lives server side; private_metadata only carries the incident id.
- "Add action item" / "Remove" (block_actions): `parse_state(view.state.values, stored)`
  first (so what the user typed so far is kept), then `with_row_added` / `with_row_removed`,
  store it, and views.update with `revision=r + 1`. Every input block id carries the
  revision (`pm_title.r3`), so Slack renders the new view from the stored content instead
  of keeping its stale client state for blocks whose id did not change.
- submit (view_submission): `parse_state`, then `field_errors(...)`; answer
  `{"response_action": "errors", "errors": ...}` when it is not empty, else run the
  quality checks and possibly push `warnings_view(...)`.
- close ("Save draft", notify_on_close): `parse_state` and store the draft.

Block ids: `block_id(field, revision)` -> f"{field}.r{revision}", `parse_block_id` reverses
it. Fields are the keys of FIELD_LABELS ("pm_title", "pm_why_1", ...) and, per action
row, f"ai_{key}_{part}" with part in ROW_PARTS ("title", "owner", "due", "priority",
"type", "ticket"). Non-input blocks (row "Remove" buttons, the "Add" button) have fixed ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

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
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
    UrlInputElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.postmortem_content import (
    ACTION_TYPES,
    CAUSE_CATEGORIES,
    MAX_TEXT,
    MAX_WHYS,
    PRIORITIES,
    ActionItemDraft,
    Impact,
    PostmortemContent,
)
from bot.ui.text import (
    MAX_HEADER_TEXT,
    MAX_MODAL_BLOCKS,
    MAX_SECTION_TEXT,
    escape,
    mention,
    plain,
    private_metadata,
    severity_label,
    truncate,
)

CALLBACK_ID = "postmortem_modal"
WARNINGS_CALLBACK_ID = "postmortem_warnings"
ADD_ACTION_ITEM = "pm_add_action_item"  # action_id of the "Add action item" button
REMOVE_ACTION_ITEM = "pm_remove_action_item"  # action_id of each row's "Remove" button; value = row key
MAX_ACTION_ROWS = 8

SEVERITIES = (1, 2, 3, 4)
SLA_OPTIONS = {"yes": "Yes", "no": "No", "unknown": "Not known yet"}
MAX_TITLE = 200
MAX_SHORT = 300  # one-line answers: users affected, duration, revenue, tickets, time to detect
MAX_WHY = 1000
MAX_ITEM_TITLE = 300  # what action_items.title holds: a stored title fits the form whole
MAX_CONTEXT_TEXT = 3000
MAX_LABEL = 2000
ADD_ROW_BLOCK = "pm_add_row"
ROW_PARTS = ("title", "owner", "due", "priority", "type", "ticket")

# Labels of the top-level fields, by block field name; the quality checks may reuse them.
FIELD_LABELS: dict[str, str] = {
    "pm_title": "Title",
    "pm_severity": "Severity",
    "pm_summary": "Summary",
    "pm_users_affected": "Users affected",
    "pm_impact_duration": "Duration of impact",
    "pm_revenue": "Revenue impact (estimate)",
    "pm_sla_breached": "SLA breached?",
    "pm_support_tickets": "Support tickets",
    "pm_detection_how": "How was it detected?",
    "pm_detection_time": "How long did it take to notice?",
    "pm_root_cause": "Root cause",
    **{f"pm_why_{i}": f"Why {i}" for i in range(1, MAX_WHYS + 1)},
    "pm_factors_technical": "Technical factors",
    "pm_factors_process": "Process factors",
    "pm_factors_human": "Human factors",
    "pm_cause_category": "Cause category",
    "pm_went_well": "What went well",
    "pm_went_wrong": "What went wrong",
    "pm_lucky": "Where we got lucky",
    "pm_lessons": "Lessons learned",
}

# Text fields of PostmortemContent / Impact, by block field name: (attribute path, max_length).
TEXT_FIELDS: dict[str, tuple[str, int]] = {
    "pm_title": ("title", MAX_TITLE),
    "pm_summary": ("summary", MAX_TEXT),
    "pm_users_affected": ("impact.users_affected", MAX_SHORT),
    "pm_impact_duration": ("impact.duration", MAX_SHORT),
    "pm_revenue": ("impact.revenue", MAX_SHORT),
    "pm_support_tickets": ("impact.support_tickets", MAX_SHORT),
    "pm_detection_how": ("detection_how", MAX_TEXT),
    "pm_detection_time": ("detection_time", MAX_SHORT),
    "pm_root_cause": ("root_cause", MAX_TEXT),
    "pm_factors_technical": ("factors_technical", MAX_TEXT),
    "pm_factors_process": ("factors_process", MAX_TEXT),
    "pm_factors_human": ("factors_human", MAX_TEXT),
    "pm_went_well": ("went_well", MAX_TEXT),
    "pm_went_wrong": ("went_wrong", MAX_TEXT),
    "pm_lucky": ("lucky", MAX_TEXT),
    "pm_lessons": ("lessons", MAX_TEXT),
}

_HINTS: dict[str, str] = {
    "pm_summary": "Two or three sentences: what happened, who noticed, how it ended.",
    "pm_root_cause": "Describe the systems and conditions that failed, not the people involved.",
    "pm_why_1": "Start from the symptom; each next answer explains the one above it. Leave the rest empty when you reach the cause.",
    "pm_factors_human": "The conditions that made a mistake easy (tooling, fatigue, unclear docs), not who made it.",
    "pm_lucky": "What limited the damage by chance and would not help next time.",
}
_PLACEHOLDERS: dict[str, str] = {
    "pm_title": "e.g. Checkout errors after the payments config change",
    "pm_users_affected": "e.g. about 12% of EU checkout users",
    "pm_impact_duration": "e.g. 42 minutes",
    "pm_revenue": "e.g. ~$8k in failed orders, or none",
    "pm_support_tickets": "e.g. 37 tickets",
    "pm_detection_time": "e.g. 6 minutes after the deploy",
}

_BLOCK_ID_RE = re.compile(r"(?P<field>.+)\.r(?P<rev>\d{1,9})")
_ROW_KEY_RE = re.compile(r"[A-Za-z0-9-]{1,64}")


# ---------------------------------------------------------------------------------------
# Block ids
# ---------------------------------------------------------------------------------------


def block_id(field: str, revision: int) -> str:
    """The id of an input block: the stable field name plus the view's revision."""
    return f"{field}.r{int(revision)}"


def parse_block_id(value: str) -> tuple[str, int | None]:
    """("pm_title", 3) from "pm_title.r3"; (value, None) when there is no revision suffix."""
    match = _BLOCK_ID_RE.fullmatch(value)
    if match:
        return match["field"], int(match["rev"])
    return value, None


def revision_of(view: Any) -> int:
    """The revision a rendered (or submitted) view was built with: its input block ids' suffix.

    Looks at the view's blocks, then at view.state.values; 0 when none carries a suffix.
    Never raises, whatever `view` is.
    """
    if not isinstance(view, Mapping):
        return 0
    ids: list[Any] = []
    blocks = view.get("blocks")
    if isinstance(blocks, list):
        ids += [b.get("block_id") for b in blocks if isinstance(b, Mapping) and b.get("type") == "input"]
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    if isinstance(values, Mapping):
        ids += list(values)
    revisions = [rev for i in ids if isinstance(i, str) for _, rev in [parse_block_id(i)] if rev is not None]
    return max(revisions, default=0)


def row_field(key: str, part: str) -> str:
    """The field name of one input of an action row: ai_{key}_{part}."""
    return f"ai_{key}_{part}"


def row_block_id(key: str, part: str, revision: int) -> str:
    return block_id(row_field(key, part), revision)


def field_text(content: PostmortemContent, field: str) -> str:
    """What `content` holds for one of the form's text fields (a TEXT_FIELDS key); "" if none."""
    obj: Any = content
    for part in TEXT_FIELDS[field][0].split("."):
        obj = getattr(obj, part, "")
    return obj if isinstance(obj, str) else ""


def visible_rows(content: PostmortemContent) -> list[ActionItemDraft]:
    """The action rows the modal shows: the first MAX_ACTION_ROWS with a usable, unique key.

    Any other row (past the cap, or stored with a malformed or duplicate key) is not shown,
    and parse_state keeps it unchanged, so nothing is lost.
    """
    return [content.action_items[i] for i in visible_indices(content)]


def visible_indices(content: PostmortemContent) -> list[int]:
    seen: set[str] = set()
    indices: list[int] = []
    for i, row in enumerate(content.action_items):
        if len(indices) >= MAX_ACTION_ROWS:
            break
        key = row.key
        if isinstance(key, str) and _ROW_KEY_RE.fullmatch(key) and key not in seen:
            seen.add(key)
            indices.append(i)
    return indices


# ---------------------------------------------------------------------------------------
# The modal
# ---------------------------------------------------------------------------------------


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=plain(truncate(text, MAX_HEADER_TEXT)))


def _input(field: str, revision: int, label: str, element: Any, hint: str | None = None) -> InputBlock:
    return InputBlock(
        block_id=block_id(field, revision),
        label=plain(truncate(label, MAX_LABEL)),
        element=element,
        hint=plain(truncate(hint, MAX_LABEL)) if hint else None,
        optional=True,
    )


def _text_element(
    action_id: str, value: str, max_length: int, *, multiline: bool = False, placeholder: str | None = None
) -> PlainTextInputElement:
    return PlainTextInputElement(
        action_id=action_id,
        initial_value=truncate(value, max_length) if value else None,
        multiline=multiline or None,
        max_length=max_length,
        placeholder=plain(truncate(placeholder, 150)) if placeholder else None,
    )


def _option(value: str, label: str) -> Option:
    return Option(value=value, label=truncate(label, 75))


def _select(action_id: str, choices: Mapping[str, str], selected: str | None, placeholder: str) -> StaticSelectElement:
    options = [_option(v, label) for v, label in list(choices.items())[:100]]
    initial = next((o for o in options if o.value == selected), None) if selected else None
    return StaticSelectElement(
        action_id=action_id, options=options, initial_option=initial, placeholder=plain(placeholder)
    )


def _text_input(content: PostmortemContent, field: str, revision: int, *, multiline: bool) -> InputBlock:
    max_length = TEXT_FIELDS[field][1]
    return _input(
        field,
        revision,
        FIELD_LABELS[field],
        _text_element(
            field[3:], field_text(content, field), max_length, multiline=multiline, placeholder=_PLACEHOLDERS.get(field)
        ),
        _HINTS.get(field),
    )


def _row_blocks(row: ActionItemDraft, number: int, revision: int) -> list[Block]:
    key = row.key
    due = row.due if isinstance(row.due, date) else None
    return [
        _input(
            row_field(key, "title"),
            revision,
            f"Action item {number}",
            _text_element(
                "title",
                row.title or "",
                MAX_ITEM_TITLE,
                placeholder="What will change, e.g. Add a canary step to payments deploys",
            ),
        ),
        _input(
            row_field(key, "owner"),
            revision,
            "Owner",
            UserSelectElement(action_id="owner", initial_user=row.owner or None, placeholder=plain("One person")),
        ),
        _input(
            row_field(key, "due"),
            revision,
            "Due date",
            DatePickerElement(
                action_id="due", initial_date=due.isoformat() if due else None, placeholder=plain("Pick a date")
            ),
        ),
        _input(
            row_field(key, "priority"),
            revision,
            "Priority",
            _select("priority", PRIORITIES, row.priority, "Pick a priority"),
        ),
        _input(row_field(key, "type"), revision, "Type", _select("type", ACTION_TYPES, row.type, "Pick a type")),
        _input(
            row_field(key, "ticket"),
            revision,
            "Ticket link",
            UrlInputElement(
                action_id="ticket",
                initial_value=truncate(row.ticket_url, MAX_TEXT) if row.ticket_url else None,
                placeholder=plain("https://…"),
            ),
        ),
        ActionsBlock(
            block_id=f"ai_{key}_actions",
            elements=[
                ButtonElement(
                    text=plain("Remove"),
                    action_id=REMOVE_ACTION_ITEM,
                    value=key,
                    accessibility_label=f"Remove action item {number}",
                )
            ],
        ),
    ]


ROW_BLOCKS = 7  # blocks per action row (_row_blocks)


def _row_summary(row: ActionItemDraft) -> str:
    """One row the form does not show, in a line: title, owner, due date."""
    title = escape(truncate((row.title or "").strip() or "Untitled", 120))
    details = [mention(row.owner, fallback="")]  # only a well-formed user id becomes a mention
    details.append(f"due {row.due.isoformat()}" if isinstance(row.due, date) else "")
    said = ", ".join(d for d in details if d)
    return f"*{title}*" + (f" ({said})" if said else "")


def postmortem_modal(
    content: PostmortemContent,
    *,
    incident_id: int,
    context_line: str,
    revision: int = 0,
    notice: str | None = None,
) -> dict[str, Any]:
    """The post-mortem modal (a views.open / views.update `view`) showing `content`."""
    r = revision
    blocks: list[Block] = []
    context = [
        MarkdownTextObject(text=truncate(t, MAX_CONTEXT_TEXT)) for t in (context_line, notice) if t and t.strip()
    ]
    if context:
        blocks.append(ContextBlock(elements=context))

    breached = content.impact.sla_breached if isinstance(content.impact, Impact) else None
    sla = None if breached is None else ("yes" if breached else "no")
    severity = f"SEV{content.severity}" if content.severity in SEVERITIES else None
    why_values = [w if isinstance(w, str) else "" for w in list(content.whys or [])[:MAX_WHYS]]
    why_values += [""] * (MAX_WHYS - len(why_values))

    blocks += [
        _text_input(content, "pm_title", r, multiline=False),
        _input(
            "pm_severity",
            r,
            FIELD_LABELS["pm_severity"],
            _select("severity", {f"SEV{s}": severity_label(s) for s in SEVERITIES}, severity, "Pick a severity"),
        ),
        _header("Summary"),
        _text_input(content, "pm_summary", r, multiline=True),
        _header("Impact"),
        _text_input(content, "pm_users_affected", r, multiline=False),
        _text_input(content, "pm_impact_duration", r, multiline=False),
        _text_input(content, "pm_revenue", r, multiline=False),
        _input(
            "pm_sla_breached",
            r,
            FIELD_LABELS["pm_sla_breached"],
            RadioButtonsElement(
                action_id="sla_breached",
                options=[_option(v, label) for v, label in SLA_OPTIONS.items()],
                initial_option=_option(sla, SLA_OPTIONS[sla]) if sla else None,
            ),
        ),
        _text_input(content, "pm_support_tickets", r, multiline=False),
        _header("Detection"),
        _text_input(content, "pm_detection_how", r, multiline=True),
        _text_input(content, "pm_detection_time", r, multiline=False),
        _header("Root cause"),
        _text_input(content, "pm_root_cause", r, multiline=True),
    ]
    for i, why in enumerate(why_values, start=1):
        field = f"pm_why_{i}"
        blocks.append(
            _input(
                field,
                r,
                FIELD_LABELS[field],
                _text_element(f"why_{i}", why, MAX_WHY, multiline=True),
                _HINTS.get(field),
            )
        )
    blocks += [
        _header("Contributing factors"),
        _text_input(content, "pm_factors_technical", r, multiline=True),
        _text_input(content, "pm_factors_process", r, multiline=True),
        _text_input(content, "pm_factors_human", r, multiline=True),
        _input(
            "pm_cause_category",
            r,
            FIELD_LABELS["pm_cause_category"],
            _select("cause_category", CAUSE_CATEGORIES, content.cause_category, "Pick the closest category"),
        ),
        _header("Looking back"),
        _text_input(content, "pm_went_well", r, multiline=True),
        _text_input(content, "pm_went_wrong", r, multiline=True),
        _text_input(content, "pm_lucky", r, multiline=True),
        _text_input(content, "pm_lessons", r, multiline=True),
        _header("Action items"),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="Each action item needs one owner (a person) and a due date. "
                    "Prefer items that change systems over items that ask people to be careful."
                )
            ]
        ),
    ]

    indices = visible_indices(content)
    for number, i in enumerate(indices, start=1):
        blocks += _row_blocks(content.action_items[i], number, r)

    shown = set(indices)
    hidden = [row for i, row in enumerate(content.action_items) if i not in shown]
    footer: list[str] = []
    if len(content.action_items) >= MAX_ACTION_ROWS:
        footer.append(
            f"This form holds up to {MAX_ACTION_ROWS} action items (Slack limits a form to {MAX_MODAL_BLOCKS} blocks); "
            "track further work in the tickets of these items."
        )
    if hidden:
        # Named, so nobody takes them for lost; removing a row above makes room for them.
        footer.append(
            f"{len(hidden)} more action item{'s are' if len(hidden) != 1 else ' is'} kept as saved but not shown here: "
            + "; ".join(_row_summary(row) for row in hidden)
            + "."
        )
    if footer:
        text = truncate(" ".join(footer), MAX_CONTEXT_TEXT)
        blocks.append(ContextBlock(block_id=ADD_ROW_BLOCK, elements=[MarkdownTextObject(text=text)]))
    else:
        blocks.append(
            ActionsBlock(
                block_id=ADD_ROW_BLOCK,
                elements=[ButtonElement(text=plain("Add action item"), action_id=ADD_ACTION_ITEM, value="add")],
            )
        )

    view = View(
        type="modal",
        callback_id=CALLBACK_ID,
        notify_on_close=True,
        title=plain("Post-mortem"),
        submit=plain("Submit"),
        close=plain("Save draft"),
        private_metadata=private_metadata({"incident_id": int(incident_id)}),
        blocks=blocks,
    )
    return view.to_dict()


# Blocks outside the action rows, and the worst case with every row: checked at import.
# 1 context line + 24 inputs + 7 headers + the action-item hint + the add button (or limit line).
FIXED_BLOCKS = 1 + 24 + 7 + 1 + 1
assert FIXED_BLOCKS + ROW_BLOCKS * MAX_ACTION_ROWS <= MAX_MODAL_BLOCKS


WARNINGS_INTRO = (
    "*A few suggestions before you submit.* They help keep the post-mortem blameless and useful "
    "to readers who were not there. They are suggestions only: go *Back to edit* to change the "
    "draft, or *Submit anyway* to submit it as it is."
)


def warnings_view(warnings: Sequence[tuple[str, str]], *, incident_id: int) -> dict[str, Any]:
    """A modal (to views.push over the post-mortem modal) listing the quality warnings."""
    warnings = list(warnings)
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=WARNINGS_INTRO))]
    room = MAX_MODAL_BLOCKS - len(blocks)
    shown = warnings if len(warnings) <= room else warnings[: room - 1]
    for label, message in shown:
        text = f"*{escape(truncate(str(label), 200))}*\n{escape(str(message))}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(text, MAX_SECTION_TEXT))))
    rest = len(warnings) - len(shown)
    if rest:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(text=f"…and {rest} more suggestion{'s' if rest != 1 else ''} of the same kind.")
                ]
            )
        )
    view = View(
        type="modal",
        callback_id=WARNINGS_CALLBACK_ID,
        title=plain("Check before submit"),
        submit=plain("Submit anyway"),
        close=plain("Back to edit"),
        private_metadata=private_metadata({"incident_id": int(incident_id)}),
        blocks=blocks,
    )
    return view.to_dict()
