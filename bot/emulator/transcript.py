"""Block Kit and mrkdwn as a person would read them, for the demo's terminal transcript."""

from __future__ import annotations

import html
import re
from typing import Any, Callable, Mapping

DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def readable(text: str, user_name: Callable[[str], str]) -> str:
    """mrkdwn to plain text: dates show their fallback, mentions become @name, entities decode."""
    text = DATE_TOKEN.sub(r"\1", text)
    text = USER_MENTION.sub(lambda m: "@" + user_name(m.group(1)), text)
    return html.unescape(text)


def render(message: Mapping[str, Any], user_name: Callable[[str], str]) -> str:
    """A message or view: its blocks if it has any, else its text."""
    lines: list[str] = []
    for block in message.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif kind == "section":
            if block.get("text"):
                lines.append(block["text"]["text"])
            fields = [f["text"].replace("\n", ": ", 1) for f in block.get("fields") or []]
            if fields:
                lines.append("   ".join(fields))
        elif kind == "context":
            lines.append("  " + " ".join(e.get("text", "") for e in block.get("elements") or []))
        elif kind == "actions":
            buttons = [
                (e.get("text") or e.get("placeholder") or {}).get("text", e.get("type", ""))
                for e in block.get("elements") or []
            ]
            lines.append("  " + "  ".join(f"[{b}]" for b in buttons))
        elif kind == "divider":
            lines.append("  ----")
    if not lines:
        lines.append(str(message.get("text", "")))
    return readable("\n".join(lines), user_name)
