"""`postmortem-bot lint`: the quality checks on a post-mortem written anywhere.

Reads what `postmortem-bot export` prints, as JSON (or any JSON object with those keys:
`title`, `summary`, `root_cause`, `whys`, `factors` or `contributing_factors`, `went_well`,
`went_wrong`, `lucky`, `lessons`, `action_items` with `title`, `owner`, `due`; a missing key
is empty) or as the Markdown the bot renders (templates/postmortem.md.j2), and turns it into
the PostmortemContent that bot/quality.py reviews. Warnings name fields as the export names
them ("contributing_factors.human", "action_items[2]"). Pure apart from what the caller reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.postmortem_content import CAUSE_CATEGORIES, ActionItemDraft, Impact, PostmortemContent
from bot.quality import QualityWarning, review

__all__ = ["LintInputError", "Lintable", "parse", "lint", "as_json", "as_text"]


class LintInputError(ValueError):
    """The input is not a post-mortem we can read; the message says why, in one line."""


@dataclass
class Lintable:
    content: PostmortemContent
    # Content field ids (bot/quality.py) -> the input's own names, where they differ.
    field_names: dict[str, str] = field(default_factory=dict)


# --- JSON --------------------------------------------------------------------------------

_TEXT_KEYS = ("title", "summary", "root_cause", "went_well", "went_wrong", "lucky", "lessons")
_FACTORS = {"technical": "factors_technical", "process": "factors_process", "human": "factors_human"}


def _text(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    raise LintInputError(f"`{key}` must be text or a list of text, not {type(value).__name__}")


def _rows(items: Any) -> list[ActionItemDraft]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise LintInputError(f"`action_items` must be a list, not {type(items).__name__}")
    rows = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"title": item}
        if not isinstance(item, dict):
            raise LintInputError(f"`action_items[{i}]` must be an object with a title, not {type(item).__name__}")
        due = item.get("due")
        try:
            when = date.fromisoformat(due) if isinstance(due, str) and due else None
        except ValueError:
            when = None
        owner = item.get("owner")
        rows.append(
            ActionItemDraft(
                key=f"a{i}",
                title=_text(item.get("title"), f"action_items[{i}].title"),
                owner=str(owner) if owner else None,
                due=when,
                ticket_url=item["ticket"] if isinstance(item.get("ticket"), str) else "",
            )
        )
    return rows


def from_json(data: Any) -> Lintable:
    if not isinstance(data, dict):
        raise LintInputError(
            f"expected a JSON object (a post-mortem as `export --format json` prints it), not a {type(data).__name__}"
        )
    values: dict[str, Any] = {key: _text(data.get(key), key) for key in _TEXT_KEYS}
    names: dict[str, str] = {}
    whys = data.get("whys")
    if isinstance(whys, str):
        whys = [whys]
    if whys is not None and not (isinstance(whys, list) and all(isinstance(w, str) for w in whys)):
        raise LintInputError("`whys` must be a list of text")
    factors = data.get("contributing_factors", data.get("factors"))
    key = "contributing_factors" if "contributing_factors" in data else "factors"
    if isinstance(factors, dict):
        for part, name in _FACTORS.items():
            values[name] = _text(factors.get(part), f"{key}.{part}")
            names[name] = f"{key}.{part}"
    else:
        values["factors_technical"] = _text(factors, key)
        names["factors_technical"] = key
    impact: dict[str, Any] = data["impact"] if isinstance(data.get("impact"), dict) else {}
    detection: dict[str, Any] = data["detection"] if isinstance(data.get("detection"), dict) else {}
    category = data.get("cause_category")
    content = PostmortemContent(
        impact=Impact(
            users_affected=_text(impact.get("users_affected"), "impact.users_affected"),
            duration=_text(impact.get("duration"), "impact.duration"),
            revenue=_text(impact.get("revenue"), "impact.revenue"),
        ),
        detection_how=_text(detection.get("how"), "detection.how"),
        detection_time=_text(detection.get("time_to_detect"), "detection.time_to_detect"),
        whys=list(whys or []),
        cause_category=category if category in CAUSE_CATEGORIES else None,
        action_items=_rows(data.get("action_items")),
        **values,
    )
    names.update({"detection_how": "detection.how", "detection_time": "detection.time_to_detect"})
    return Lintable(content, names)


# --- Markdown as the bot renders it --------------------------------------------------------

_HEADING = re.compile(r"^(#{1,3})\s+(.*?)\s*#*\s*$")
_SECTIONS = {
    "summary": "summary",
    "impact": "impact",
    "detection": "detection",
    "root cause": "root_cause",
    "five whys": "whys",
    "5 whys": "whys",
    "contributing factors": "factors",
    "technical": "factors_technical",
    "process": "factors_process",
    "human": "factors_human",
    "cause category": "cause_category",
    "what went well": "went_well",
    "what went wrong": "went_wrong",
    "where we got lucky": "lucky",
    "lessons learned": "lessons",
    "lessons": "lessons",
    "action items": "action_items",
    "timeline": "timeline",
}
_EMPTY = {"_Not written yet._", "_No timeline entries yet._", "—"}
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_NUMBERED = re.compile(r"^(\d{1,9})[.)]\s+(.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _unescape(text: str) -> str:
    """Undo postmortem_document.py's md_text/md_cell escapes: the words as typed."""
    return _ESCAPED.sub(r"\1", text.replace("<br>", "\n"))


def _prose(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines).strip()
    return "" if text in _EMPTY else _unescape(text)


def _cells(line: str) -> list[str]:
    parts = _CELL_SPLIT.split(line.strip().strip("|") if line.strip().startswith("|") else line)
    return [_unescape(part.strip()) for part in parts]


def _table(lines: list[str]) -> list[list[str]]:
    rows = [_cells(line) for line in lines if line.strip().startswith("|")]
    return [row for row in rows if not all(re.fullmatch(r":?-{3,}:?", cell) or not cell for cell in row)]


def _whys(lines: list[str]) -> list[str]:
    whys: list[list[str]] = []
    for line in lines:
        numbered = _NUMBERED.match(line.strip())
        if numbered and not line.startswith(" "):
            whys.append([numbered.group(2)])
        elif whys and line.strip():
            whys[-1].append(line.strip())
    return [_unescape("\n".join(why)) for why in whys]


def from_markdown(text: str) -> Lintable:
    sections: dict[str, list[str]] = {}
    title = ""
    current: str | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            level, words = len(heading.group(1)), heading.group(2)
            if level == 1:
                title = _unescape(re.sub(r"^post-?mortem:\s*", "", words, flags=re.IGNORECASE))
                current = None
                continue
            current = _SECTIONS.get(words.strip().lower())
            if current is not None:
                sections.setdefault(current, [])
            continue
        if current is not None:
            sections[current].append(line)
    if not title and not sections:
        raise LintInputError(
            "not a post-mortem: neither a JSON object nor Markdown with the headings the bot exports "
            "(“## Summary”, “## Root cause”, “## Action items”...)"
        )
    cells = {
        row[0].lower(): row[1]
        for row in _table(sections.get("impact", []) + sections.get("detection", []))
        if len(row) > 1
    }

    def cell(name: str) -> str:
        value = cells.get(name.lower(), "")
        return "" if value in _EMPTY else value

    category_label = _prose(sections.get("cause_category", []))
    category = next((key for key, label in CAUSE_CATEGORIES.items() if label.lower() == category_label.lower()), None)
    items = []
    for row in _table(sections.get("action_items", []))[1:]:  # the first row is the header
        if not row or row[0] in _EMPTY:
            continue
        due = row[2] if len(row) > 2 and row[2] not in _EMPTY else None
        items.append({"title": row[0], "owner": row[1] if len(row) > 1 and row[1] not in _EMPTY else None, "due": due})
    root = sections.get("root_cause", [])
    content = from_json(
        {
            "title": title,
            "summary": _prose(sections.get("summary", [])),
            "impact": {
                "users_affected": cell("Users affected"),
                "duration": cell("Duration"),
                "revenue": cell("Revenue"),
            },
            "detection": {"how": cell("How it was detected"), "time_to_detect": cell("Time to detect")},
            "root_cause": _prose(root),
            "whys": _whys(sections.get("whys", [])),
            "contributing_factors": {part: _prose(sections.get(name, [])) for part, name in _FACTORS.items()},
            "cause_category": category,
            "went_well": _prose(sections.get("went_well", [])),
            "went_wrong": _prose(sections.get("went_wrong", [])),
            "lucky": _prose(sections.get("lucky", [])),
            "lessons": _prose(sections.get("lessons", [])),
            "action_items": items,
        }
    )
    # A "factors" section with no sub-headings is prose of its own.
    loose = _prose(sections.get("factors", []))
    if loose and not any(sections.get(name) for name in _FACTORS.values()):
        content.content.factors_technical = loose
        content.field_names["factors_technical"] = "contributing_factors"
    return content


def parse(text: str) -> Lintable:
    """A post-mortem from JSON or the bot's Markdown; LintInputError says why not."""
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise LintInputError("the input is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise LintInputError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        return from_json(data)
    return from_markdown(stripped)


# --- Output -------------------------------------------------------------------------------


def _field_name(warning: QualityWarning, lintable: Lintable) -> str:
    if warning.field.startswith("action_item:a"):
        return f"action_items[{warning.field.removeprefix('action_item:a')}]"
    return lintable.field_names.get(warning.field, warning.field)


def lint(lintable: Lintable, people: Iterable[str]) -> list[dict[str, str]]:
    """The warnings as `{field, code, message, quote}`, in document order."""
    return [
        {"field": _field_name(w, lintable), "code": w.code, "message": w.message, "quote": w.quote}
        for w in review(lintable.content, people)
    ]


def as_json(warnings: Sequence[dict[str, str]]) -> str:
    return json.dumps(list(warnings), ensure_ascii=False, indent=2) + "\n"


def as_text(warnings: Sequence[dict[str, str]], source: str) -> str:
    if not warnings:
        return f"{source}: no warnings\n"
    lines = [f"{source}: {w['field']}: {w['message']} [{w['code']}]" for w in warnings]
    count = len(warnings)
    lines.append(f"{count} warning{'s' if count != 1 else ''} in {source}")
    return "\n".join(lines) + "\n"
