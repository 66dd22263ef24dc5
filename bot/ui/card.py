"""The incident card: the pinned message that says what is going on in the channel."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.ui.text import MAX_HEADER_TEXT, escape, mention, severity_label, slack_date, truncate, utc_label
from storage.models import Incident

STATUS_LABELS = {"active": ":red_circle: Active", "resolved": ":large_green_circle: Resolved"}


def incident_card(incident: Incident, timeline_emojis: tuple[str, ...] = ("pushpin",)) -> dict:
    """chat.postMessage arguments (text, blocks) for the card of `incident`."""
    header = truncate(f":rotating_light: {incident.title}", MAX_HEADER_TEXT)
    fields = [
        MarkdownTextObject(text=f"*Severity*\n{severity_label(incident.severity)}"),
        MarkdownTextObject(text=f"*Status*\n{STATUS_LABELS.get(incident.status, escape(incident.status))}"),
        MarkdownTextObject(text=f"*Commander*\n{mention(incident.commander_id)}"),
        MarkdownTextObject(text=f"*Started*\n{slack_date(incident.started_at)}"),
    ]
    emoji = " or ".join(f":{e}:" for e in timeline_emojis)
    hint = (
        f"React with {emoji} (or use the *Add to timeline* shortcut) to put a message on the timeline. "
        "`/postmortem note [HH:MM] text` adds a note; `/postmortem timeline` shows the draft."
    )
    blocks = [
        HeaderBlock(text=PlainTextObject(text=header, emoji=True)),
        SectionBlock(fields=fields),
        ContextBlock(elements=[MarkdownTextObject(text=hint)]),
    ]
    text = (
        f"Incident: {escape(incident.title)} ({severity_label(incident.severity)}), "
        f"declared by {mention(incident.commander_id)} at {utc_label(incident.started_at)}"
    )
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}
