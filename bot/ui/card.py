"""The incident card: the pinned message that says what is going on in the channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.nudge_calendar import meeting_deadline
from bot.ui.text import (
    MAX_HEADER_TEXT,
    channel_link,
    date_label,
    escape,
    escape_line,
    mention,
    packed_list,
    severity_label,
    slack_date,
    truncate,
    utc_label,
)
from bot.views import IncidentView, RepeatIncident

STATUS_LABELS = {"active": ":red_circle: Active", "resolved": ":large_green_circle: Resolved"}
POSTMORTEM_LABELS = {
    None: "not started",
    "draft": ":pencil2: draft",
    "in_review": ":mag: in review",
    "published": ":white_check_mark: published",
}

# action_ids of the card's buttons; each button's value is the incident id.
RESOLVE = "incident_resolve"
CONTINUE_POSTMORTEM = "postmortem_continue"
PUBLISH_POSTMORTEM = "postmortem_publish"
SCHEDULE_MEETING = "meeting_schedule"  # also the button of the commander's reminder (bot/ui/meeting.py)


def meeting_line(incident: IncidentView) -> str | None:
    """The review meeting: when it is, or the deadline severity sets for it (DESIGN.md)."""
    if incident.meeting_at is not None:
        return f"{slack_date(incident.meeting_at)}"
    if incident.resolved_at is None:
        return None
    deadline = meeting_deadline(incident.resolved_at, incident.severity, requested=incident.meeting_requested)
    return f"not scheduled, due by {slack_date(deadline)}" if deadline else None


def card_buttons(incident: IncidentView, postmortem_status: str | None) -> list[ButtonElement]:
    """What can be done next, and only that: a button that cannot work is not shown."""
    value = str(incident.id)
    if incident.status == "active":
        return [ButtonElement(text="Resolve", action_id=RESOLVE, value=value, style="primary")]
    buttons = _postmortem_buttons(value, postmortem_status)
    if incident.meeting_at is None and meeting_line(incident) is not None:
        buttons.append(ButtonElement(text="Schedule meeting", action_id=SCHEDULE_MEETING, value=value))
    return buttons


def _postmortem_buttons(value: str, postmortem_status: str | None) -> list[ButtonElement]:
    if postmortem_status in (None, "draft"):
        label = "Continue post-mortem" if postmortem_status == "draft" else "Write post-mortem"
        return [ButtonElement(text=label, action_id=CONTINUE_POSTMORTEM, value=value, style="primary")]
    buttons = [ButtonElement(text="Edit post-mortem", action_id=CONTINUE_POSTMORTEM, value=value)]
    if postmortem_status == "in_review":
        buttons.insert(0, ButtonElement(text="Publish", action_id=PUBLISH_POSTMORTEM, value=value, style="primary"))
    return buttons


def repeat_blocks(repeats: Sequence[RepeatIncident]) -> list[SectionBlock]:
    """Earlier incidents that look like this one, each with what is still open of it."""
    blocks = []
    for repeat in repeats[:3]:
        earlier = repeat.incident
        head = (
            f":repeat: *Happened before?* {escape_line(earlier.title, 100)} {channel_link(earlier.channel_id)}, "
            f"{severity_label(earlier.severity)}, {slack_date(earlier.started_at, '{date_short_pretty}')} "
            f"({escape_line(repeat.why, 100)})"
        )
        lines = [
            f"• {escape_line(a.title, 100)}: {mention(a.owner_id)}, due {date_label(a.due)}" for a in repeat.open_items
        ]
        still = f"{len(lines)} action item{'' if len(lines) == 1 else 's'} still open:"
        text = packed_list(f"{head}\n{still}", lines, 1500) if lines else head
        blocks.append(SectionBlock(text=MarkdownTextObject(text=text)))
    return blocks


def incident_card(
    incident: IncidentView,
    timeline_emojis: tuple[str, ...] = ("pushpin",),
    postmortem_status: str | None = None,
    repeats: Sequence[RepeatIncident] = (),
) -> dict[str, Any]:
    """chat.postMessage / chat.update arguments (text, blocks) for the card of `incident`;
    `repeats`: earlier incidents that look like it (bot/repeats.py), shown under the facts."""
    header = truncate(f":rotating_light: {incident.title}", MAX_HEADER_TEXT)
    fields = [
        MarkdownTextObject(text=f"*Severity*\n{severity_label(incident.severity)}"),
        MarkdownTextObject(text=f"*Status*\n{STATUS_LABELS.get(incident.status, escape(incident.status))}"),
        MarkdownTextObject(text=f"*Commander*\n{mention(incident.commander_id)}"),
        MarkdownTextObject(text=f"*Started*\n{slack_date(incident.started_at)}"),
    ]
    if incident.tracker:
        fields.append(MarkdownTextObject(text=f"*Tickets in*\n{escape(incident.tracker)}"))
    if incident.resolved_at is not None:
        fields.append(MarkdownTextObject(text=f"*Resolved*\n{slack_date(incident.resolved_at)}"))
        fields.append(
            MarkdownTextObject(text=f"*Post-mortem*\n{POSTMORTEM_LABELS.get(postmortem_status, postmortem_status)}")
        )
        meeting = meeting_line(incident)
        if meeting:
            fields.append(MarkdownTextObject(text=f"*Review meeting*\n{meeting}"))
    emoji = " or ".join(f":{e}:" for e in timeline_emojis)
    hint = (
        f"React with {emoji} (or use the *Add to timeline* shortcut) to put a message on the timeline. "
        "`/postmortem note [HH:MM] text` adds a note; `/postmortem timeline` shows the draft."
    )
    blocks = [
        HeaderBlock(text=PlainTextObject(text=header, emoji=True)),
        SectionBlock(fields=fields),
        *repeat_blocks(repeats),
        ContextBlock(elements=[MarkdownTextObject(text=hint)]),
        ActionsBlock(block_id="incident_card_actions", elements=card_buttons(incident, postmortem_status)),
    ]
    text = (
        f"Incident: {escape(incident.title)} ({severity_label(incident.severity)}), "
        f"declared by {mention(incident.commander_id)} at {utc_label(incident.started_at)}"
    )
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}
