"""What a post-mortem says: the content people write in the modal, as plain data.

Shared by the form (bot/ui/postmortem_modal.py builds it, bot/ui/postmortem_state.py reads
it), the quality checks (bot/quality.py), the service that stores revisions, and the
document renderer. It is stored as JSON (`to_json`/`from_json`), so drafts of any length
live server side, never in a view's private_metadata.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

CAUSE_CATEGORIES: dict[str, str] = {
    "configuration": "Configuration",
    "deployment": "Deployment",
    "dependency_failure": "Dependency failure",
    "capacity": "Capacity",
    "human_error": "Human error",
    "other": "Other",
}
PRIORITIES: dict[str, str] = {"P1": "P1 (urgent)", "P2": "P2 (soon)", "P3": "P3 (later)"}
ACTION_TYPES: dict[str, str] = {"mitigate": "Mitigate", "prevent": "Prevent", "process": "Process"}
ACTION_STATUSES: dict[str, str] = {"open": "Open", "in_progress": "In progress", "done": "Done", "wont_do": "Won't do"}
MAX_WHYS = 5
MAX_TEXT = 3000  # Slack's plain_text_input ceiling; the modal enforces it with max_length
# What a person can change of an action item in the modal, by ActionItemDraft attribute.
ITEM_FIELDS = ("title", "owner", "due", "priority", "type", "ticket_url")


def new_row_key() -> str:
    """Key of an action-item row added in the modal and not stored yet."""
    return "n" + secrets.token_hex(4)


@dataclass
class Impact:
    users_affected: str = ""
    duration: str = ""
    revenue: str = ""
    sla_breached: bool | None = None  # None: not said
    support_tickets: str = ""


@dataclass
class ActionItemDraft:
    """One action-item row of the modal.

    `key` identifies the row across views.update calls: "i<id>" for an item already stored
    (so a resubmission updates it instead of duplicating it), "n<hex>" for a new row.
    `edited` names the ITEM_FIELDS of a stored item's row that a draft changed and no
    submission stored yet; every other field shows the item as it is stored.
    """

    key: str = field(default_factory=new_row_key)
    title: str = ""
    owner: str | None = None  # a Slack user id
    due: date | None = None
    priority: str = "P2"
    type: str = "prevent"
    ticket_url: str = ""
    edited: list[str] = field(default_factory=list)

    @property
    def item_id(self) -> int | None:
        return int(self.key[1:]) if self.key.startswith("i") and self.key[1:].isdigit() else None

    def is_blank(self) -> bool:
        return not (self.title.strip() or self.owner or self.due or self.ticket_url.strip())


@dataclass
class PostmortemContent:
    title: str = ""
    severity: int = 3
    summary: str = ""
    impact: Impact = field(default_factory=Impact)
    detection_how: str = ""
    detection_time: str = ""  # how long it took to notice, in words ("6 minutes")
    root_cause: str = ""
    whys: list[str] = field(default_factory=list)  # up to MAX_WHYS, in order
    factors_technical: str = ""
    factors_process: str = ""
    factors_human: str = ""
    cause_category: str | None = None  # a key of CAUSE_CATEGORIES
    went_well: str = ""
    went_wrong: str = ""
    lucky: str = ""
    lessons: str = ""
    action_items: list[ActionItemDraft] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for row in data["action_items"]:
            row["due"] = row["due"].isoformat() if row["due"] else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PostmortemContent:
        data = dict(data)
        impact = Impact(**data.pop("impact", {}) or {})
        rows = []
        for row in data.pop("action_items", []) or []:
            row = dict(row)
            row["due"] = date.fromisoformat(row["due"]) if row.get("due") else None
            rows.append(ActionItemDraft(**row))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(impact=impact, action_items=rows, **known)


def mark_edits(content: PostmortemContent, stored: Sequence[ActionItemDraft]) -> PostmortemContent:
    """A copy of `content` (as the modal reported it) whose rows of stored items say which
    fields the person changed: those that differ from `stored` (one row per stored item)."""
    by_id = {row.item_id: row for row in stored}
    rows = []
    for row in content.action_items:
        item = by_id.get(row.item_id) if row.item_id is not None else None
        edited = [] if item is None else [f for f in ITEM_FIELDS if getattr(row, f) != getattr(item, f)]
        rows.append(replace(row, edited=edited))
    return replace(content, action_items=rows)


def with_stored_items(
    content: PostmortemContent, stored: Sequence[ActionItemDraft], removed: Collection[int] = ()
) -> PostmortemContent:
    """The rows the form shows: `content`'s, with every stored item of the incident in them.

    Items are also added outside the form (`/postmortem action`, before or after a
    submission) and changed outside it (the owner's answers), so the stored item is the
    truth: a row of a stored item shows it as stored, except the fields its draft edited.
    Stored items without a row follow the draft's rows, unless a pending removal (`removed`,
    ids) takes them out. Rows of items no longer stored are kept as typed: nothing the person
    wrote is dropped.
    """
    by_id = {row.item_id: row for row in stored}
    rows = []
    for row in content.action_items:
        item = by_id.get(row.item_id) if row.item_id is not None else None
        if item is None:
            rows.append(replace(row))
            continue
        edits = {f: getattr(row, f) for f in row.edited if f in ITEM_FIELDS}
        rows.append(replace(item, key=row.key, edited=list(edits), **edits))
    skip = {row.item_id for row in content.action_items} | set(removed)
    rows += [replace(item) for item in stored if item.item_id not in skip]
    return replace(content, action_items=rows)
