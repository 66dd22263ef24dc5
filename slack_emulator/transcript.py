"""Block Kit and mrkdwn as a person would read them, for the demo's terminal transcript."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
CHANNEL_MENTION = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
SPECIAL_MENTION = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
GROUP_MENTION = re.compile(r"<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>")
LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
# Slack's emphasis: the marker hugs the words and is not inside a word ("2*3*4" stays).
BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
EMOJI = {
    "rotating_light": "🚨",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "pushpin": "📌",
    "memo": "📝",
    "gear": "⚙️",
    "speech_balloon": "💬",
    "pencil2": "✏️",
    "white_check_mark": "✅",
    "warning": "⚠️",
    "calendar": "📅",
    "hourglass_flowing_sand": "⏳",
    "bell": "🔔",
    "x": "❌",
    "no_entry_sign": "🚫",
    "no_entry": "⛔",
    "zzz": "💤",
    "construction": "🚧",
    "raising_hand": "🙋",
    "hammer_and_wrench": "🛠️",
    "mag": "🔍",
    "clipboard": "📋",
    "alarm_clock": "⏰",
    "tada": "🎉",
    "spiral_calendar_pad": "🗓️",
}
EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")


def readable(
    text: str,
    user_name: Callable[[str], str],
    channel_name: Callable[[str], str] = lambda channel_id: channel_id,
    *,
    bold: bool = False,
) -> str:
    """mrkdwn as Slack shows it: dates show their fallback, mentions and channels their
    names, links their label, emphasis markers go (bold in a terminal when `bold`), known
    emoji codes become emoji, entities decode."""
    text = DATE_TOKEN.sub(r"\1", text)
    text = USER_MENTION.sub(lambda m: "@" + user_name(m.group(1)), text)
    text = CHANNEL_MENTION.sub(lambda m: "#" + (m.group(2) or channel_name(m.group(1))), text)
    text = SPECIAL_MENTION.sub(r"@\1", text)
    text = GROUP_MENTION.sub(lambda m: m.group(1) or "@group", text)
    text = LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = BOLD.sub(r"\033[1m\1\033[0m" if bold else r"\1", text)
    text = ITALIC.sub(r"\1", text)
    text = STRIKE.sub(r"\1", text)
    text = EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    return html.unescape(text)


def render(
    message: Mapping[str, Any],
    user_name: Callable[[str], str],
    channel_name: Callable[[str], str] = lambda channel_id: channel_id,
    *,
    bold: bool = False,
) -> str:
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
    return readable("\n".join(lines), user_name, channel_name, bold=bold)
