"""What a post-mortem says: the content people write in the modal, as plain data.

Shared by the modal (bot/ui/postmortem_modal.py builds and parses it), the quality checks
(bot/quality.py), the service that stores revisions, and the document renderer. It is
stored as JSON (`to_json`/`from_json`), so drafts of any length live server side, never in
a view's private_metadata.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
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
    """

    key: str = field(default_factory=new_row_key)
    title: str = ""
    owner: str | None = None  # a Slack user id
    due: date | None = None
    priority: str = "P2"
    type: str = "prevent"
    ticket_url: str = ""

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
    def from_json(cls, data: dict[str, Any]) -> "PostmortemContent":
        data = dict(data)
        impact = Impact(**data.pop("impact", {}) or {})
        rows = []
        for row in data.pop("action_items", []) or []:
            row = dict(row)
            row["due"] = date.fromisoformat(row["due"]) if row.get("due") else None
            rows.append(ActionItemDraft(**row))
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(impact=impact, action_items=rows, **known)
