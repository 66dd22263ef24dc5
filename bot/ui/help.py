"""Usage text for `/postmortem help`, unknown subcommands and wrong arguments."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.ui.text import escape

SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("start <title> [--sev 1-4]", "Declare an incident in this channel: pins a card and starts the timeline."),
    ("note [HH:MM] <text>", "Add a note to the timeline, now or at HH:MM today in your time zone."),
    ("timeline", "Show the draft timeline (only you see it)."),
    ("resolve", "Mark the incident resolved and open the post-mortem form (a closed form keeps its draft)."),
    ("action @owner YYYY-MM-DD <title>", "Add an action item with one owner and a due date."),
    ("sync", "Compare the timeline with the channel and repair what the bot missed while it was away."),
    (
        "stats [days]",
        "Incidents by severity and cause, time to resolve and to post-mortem, action items done on time (default: 90 days).",
    ),
    (
        "review [YYYY-Qn]",
        "The quarterly review: causes against last quarter, what recurs, the action-item graveyard (default: this quarter so far).",
    ),
    ("publish", "Publish the submitted post-mortem and share the final document."),
    (
        "meeting YYYY-MM-DD HH:MM [@people]",
        "Set the review meeting (your time zone); the bot posts an invite and, 24 h before, the agenda.",
    ),
    (
        "tracker jira KEY, linear KEY or none",
        "Where this channel's action items get tickets (commander only); default: the one tracker set up.",
    ),
    ("help", "This list."),
)


def usage_text() -> str:
    lines = ["*`/postmortem` commands*"]
    lines += [f"• `/postmortem {usage}`: {what}" for usage, what in SUBCOMMANDS]
    lines.append(
        "React with :pushpin: to a message, or use the *Add to timeline* message shortcut, to put it on the timeline."
    )
    return "\n".join(lines)


def help_message(problem: str | None = None) -> dict[str, Any]:
    """An ephemeral answer: what went wrong (if anything), then the usage."""
    blocks: list[Block] = []
    if problem:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f":warning: {escape(problem)}")))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=usage_text())))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Only you can see this message.")]))
    fallback = f"{problem}\n{usage_text()}" if problem else usage_text()
    return {"response_type": "ephemeral", "text": fallback, "blocks": [b.to_dict() for b in blocks]}


def ephemeral(text: str) -> dict[str, Any]:
    """A one-line ephemeral answer. `text` is mrkdwn written by the bot: escape user parts first."""
    return {
        "response_type": "ephemeral",
        "text": text,
        "blocks": [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
    }
