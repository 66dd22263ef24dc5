"""The post-mortem document: one data structure, rendered by Jinja2 templates.

`document_data` is the JSON export as it is; the Markdown template renders the same data.
Templates live in the repository's `templates/`; a directory named by POSTMORTEM_TEMPLATES
is searched first, so operators can override any of them.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.timeline import TimelineItem
from storage.models import Incident

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def iso_utc(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def document_data(incident: Incident, items: Sequence[TimelineItem]) -> dict[str, Any]:
    """Everything the document says, as plain JSON-able data."""
    return {
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "team": incident.team_id,
        "channel": incident.channel_id,
        "commander": incident.commander_id,
        "started_at": iso_utc(incident.started_at),
        "resolved_at": iso_utc(incident.resolved_at),
        "timeline": [
            {
                "ts": item.ts,
                "time": iso_utc(item.occurred_at),
                "kind": item.kind,
                "user": item.user_id,
                "text": item.text,
                "thread_ts": item.thread_ts,
                "files": list(item.file_names),
                "edited": item.edited,
            }
            for item in items
        ],
        "action_items": [],
    }


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks kept as <br>."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return "<br>".join(line.strip() for line in text.replace("\r\n", "\n").split("\n"))


def utc_text(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")


def template_environment() -> Environment:
    search = [str(TEMPLATES_DIR)]
    override = os.environ.get("POSTMORTEM_TEMPLATES")
    if override:
        search.insert(0, override)
    env = Environment(
        loader=FileSystemLoader(search),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md_cell"] = md_cell
    env.filters["utc"] = utc_text
    return env


def render_markdown(data: dict[str, Any]) -> str:
    text = template_environment().get_template("postmortem.md.j2").render(doc=data)
    return text if text.endswith("\n") else text + "\n"
