"""The draft timeline as an ephemeral message, within Block Kit's limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bot.ui.text import (
    MAX_BLOCKS_TEXT,
    MAX_HEADER_TEXT,
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    escape,
    mention,
    severity_label,
    slack_date,
    truncate,
    utc_label,
)
from bot.views import IncidentView, TimelineItem

KIND_ICONS = {"message": ":speech_balloon:", "note": ":memo:", "lifecycle": ":gear:"}
MAX_ENTRY_TEXT = 600  # keeps one long message from crowding out the rest of the view


def entry_line(item: TimelineItem) -> str:
    """One timeline entry in mrkdwn; everything a user typed is escaped."""
    if item.missing:
        body = "_(message not retrieved from Slack yet)_"
    else:
        body = escape(truncate(item.text or "", MAX_ENTRY_TEXT))
        if item.file_names:
            body += " " + " ".join(f"`{escape(name)}`" for name in item.file_names)
    extras = []
    if item.edited:
        extras.append("edited")
    if item.thread_ts:
        extras.append("in thread")
    suffix = f" _({', '.join(extras)})_" if extras else ""
    icon = KIND_ICONS.get(item.kind, "")
    return f"{icon} {slack_date(item.occurred_at, '{date_short} {time}')} {mention(item.user_id)}: {body}{suffix}"


def timeline_message(incident: IncidentView, items: Sequence[TimelineItem]) -> dict[str, Any]:
    """A respond()/postEphemeral payload showing the draft timeline of `incident`.

    Entries are packed into sections of at most 3,000 characters; past the message's block
    budget the rest is counted, not dropped silently.
    """
    header = truncate(f"Timeline: {incident.title}", MAX_HEADER_TEXT)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=header)),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"{severity_label(incident.severity)} · {incident.status} · started {slack_date(incident.started_at)} · "
                    f"{len(items)} entries · times in your time zone"
                )
            ]
        ),
    ]
    budget = MAX_MESSAGE_BLOCKS - len(blocks) - 1  # keep one block for the "more" note
    chunk: list[str] = []
    shown = 0
    total = 0
    for item in items:
        line = truncate(entry_line(item), MAX_SECTION_TEXT)
        if total + len(line) + 1 > MAX_BLOCKS_TEXT:
            break
        if chunk and len("\n".join(chunk + [line])) > MAX_SECTION_TEXT:
            if len(blocks) >= budget + 2:
                break
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
            chunk = []
        chunk.append(line)
        total += len(line) + 1
        shown += 1
    if chunk and len(blocks) < budget + 2:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
    elif chunk:
        shown -= len(chunk)
    if not items:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text="_No entries yet. React with :pushpin: to a message to add it._"))
        )
    if shown < len(items):
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"{len(items) - shown} later entries not shown here: "
                        f"`postmortem-bot export --channel {incident.channel_id}` prints them all."
                    )
                ]
            )
        )
    text = f"Timeline of {escape(incident.title)}: {len(items)} entries since {utc_label(incident.started_at)}"
    return {"response_type": "ephemeral", "text": text, "blocks": [b.to_dict() for b in blocks]}
