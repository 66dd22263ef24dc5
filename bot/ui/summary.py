"""The post-mortem's summary message in the channel, and the modal shown while it loads."""

from __future__ import annotations

from collections.abc import Mapping
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
from slack_sdk.models.views import View

from bot.postmortem_content import CAUSE_CATEGORIES
from bot.ui.card import CONTINUE_POSTMORTEM, PUBLISH_POSTMORTEM
from bot.ui.item_messages import ticket_link
from bot.ui.text import MAX_HEADER_TEXT, MAX_SECTION_TEXT, escape, mention, severity_label, truncate

MAX_LISTED_ACTIONS = 15


def loading_modal(problem: str | None = None) -> dict[str, Any]:
    """Opened at once with the trigger id (it lives 3 s), then replaced by the real modal."""
    text = (
        f":warning: {escape(problem)}" if problem else ":hourglass_flowing_sand: Gathering the timeline and the draft…"
    )
    view = View(
        type="modal",
        callback_id="postmortem_loading",
        title=PlainTextObject(text="Post-mortem"),
        close=PlainTextObject(text="Close"),
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    )
    return view.to_dict()


def _ticket_suffix(ticket: Any) -> str:
    """ " · <url|OPS-12>" for an action item's ticket, else nothing."""
    if not isinstance(ticket, Mapping):
        return ""
    link = ticket_link(ticket.get("url"), ticket.get("key"))
    return f" · {link}" if link else ""


def postmortem_summary(data: Mapping[str, Any], *, incident_id: int, headline: str, by: str) -> dict[str, Any]:
    """chat.postMessage arguments: what happened, in one screen, with who does what by when."""
    impact = data.get("impact") or {}
    impact_bits = [
        impact.get("users_affected") and f"users: {impact['users_affected']}",
        data.get("duration") and f"duration: {data['duration']}",
        impact.get("revenue") and f"revenue: {impact['revenue']}",
        impact.get("sla_breached") is True and "SLA breached",
        impact.get("support_tickets") and f"tickets: {impact['support_tickets']}",
    ]
    impact_line = escape("; ".join(b for b in impact_bits if b)) or "_not written yet_"
    category = CAUSE_CATEGORIES.get(data.get("cause_category") or "", "not set")
    fields = [
        MarkdownTextObject(text=f"*Severity*\n{severity_label(int(data['severity']))}"),
        MarkdownTextObject(text=f"*Duration*\n{escape(data.get('duration') or 'unresolved')}"),
        MarkdownTextObject(text=f"*Status*\n{escape((data.get('postmortem_status') or 'draft').replace('_', ' '))}"),
        MarkdownTextObject(text=f"*Cause*\n{escape(category)}"),
    ]
    actions = list(data.get("action_items") or [])
    lines = [
        f"• {escape(truncate(a['title'], 200))} — {mention(a['owner'])}, due {a['due']} ({a['priority']}, {a['status'].replace('_', ' ')})"
        + _ticket_suffix(a.get("ticket"))
        for a in actions[:MAX_LISTED_ACTIONS]
    ]
    if len(actions) > MAX_LISTED_ACTIONS:
        lines.append(f"…and {len(actions) - MAX_LISTED_ACTIONS} more in the document.")
    summary = escape(truncate(data.get("summary") or "", 1500)) or "_No summary yet._"
    value = str(incident_id)
    buttons = [ButtonElement(text="Edit post-mortem", action_id=CONTINUE_POSTMORTEM, value=value)]
    if data.get("postmortem_status") == "in_review":
        buttons.insert(0, ButtonElement(text="Publish", action_id=PUBLISH_POSTMORTEM, value=value, style="primary"))
    blocks = [
        HeaderBlock(text=PlainTextObject(text=truncate(f"{headline}: {data['title']}", MAX_HEADER_TEXT))),
        SectionBlock(text=MarkdownTextObject(text=summary)),
        SectionBlock(fields=fields),
        SectionBlock(text=MarkdownTextObject(text=f"*Impact:* {impact_line}")),
        SectionBlock(
            text=MarkdownTextObject(
                text=truncate("*Action items*\n" + ("\n".join(lines) or "_None yet._"), MAX_SECTION_TEXT)
            )
        ),
        ContextBlock(elements=[MarkdownTextObject(text=f"By {mention(by)} · the full document is in the thread.")]),
        ActionsBlock(elements=buttons),
    ]
    text = f"{headline}: {escape(data['title'])} ({severity_label(int(data['severity']))})"
    return {"text": text, "blocks": [b.to_dict() for b in blocks]}
