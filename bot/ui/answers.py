"""What listeners answer a person: the short ephemeral replies, DM receipts and refusals.

Listeners pick the answer and send it; its wording and markup live here, so every reply
the bot gives is written (and escaped) in one place. Each takes plain values, never a row.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.ui.help import ephemeral
from bot.ui.text import escape, mention, severity_label, slack_date
from bot.ui.timeline import entry_line
from bot.views import TimelineItem

NO_INCIDENT = "There is no incident in this channel. Start one with `/postmortem start <title> --sev 1`."

OTHER_WORKSPACE = (
    "This postmortem-bot serves another Slack workspace and does not act on requests from this one. "
    "Nothing was changed. Ask your Slack admins to install their own copy."
)

# Field errors on the follow-through forms (plain text: Slack shows them under the field).
SAY_WHY = "Say why: the reason goes into the post-mortem."
PICK_DATE_AND_TIME = "Pick a date and a time."


def warning_text(text: str) -> str:
    """A warning line (mrkdwn written by the bot; escape user parts first), in a DM or a reply."""
    return f":warning: {text}"


def warning(text: str) -> dict[str, Any]:
    """A one-line ephemeral warning."""
    return ephemeral(warning_text(text))


# --- /postmortem ---------------------------------------------------------------------------


def malformed_command() -> dict[str, Any]:
    return ephemeral(":warning: This command came without a valid workspace, channel or user; nothing was done.")


def slack_refused(code: str) -> dict[str, Any]:
    return warning(f"Slack refused a request ({code}). Nothing was lost; try again.")


def no_incident() -> dict[str, Any]:
    return ephemeral(NO_INCIDENT)


def already_active(title: str, severity: int, commander_id: str, started_at: datetime) -> dict[str, Any]:
    """A second `/postmortem start` in a channel whose incident is still active."""
    return ephemeral(
        f"An incident is already active in this channel: *{escape(title)}* "
        f"({severity_label(severity)}), declared by {mention(commander_id)} "
        f"{slack_date(started_at)}. `/postmortem timeline` shows its timeline."
    )


def note_added(item: TimelineItem) -> dict[str, Any]:
    return ephemeral(f"Added to the timeline: {entry_line(item)}")


def tracker_chosen(said: str) -> dict[str, Any]:
    return ephemeral(f":ticket: {said}")


def action_item_added(title: str, owner_id: str, due: date) -> dict[str, Any]:
    return ephemeral(f"Action item added: *{escape(title)}*, owner {mention(owner_id)}, due {due.isoformat()}.")


def meeting_set(at: datetime, problem: str | None) -> dict[str, Any]:
    if problem:
        return warning(f"Review meeting set for {slack_date(at)}. {problem}")
    return ephemeral(f"Review meeting set for {slack_date(at)}; the agenda comes 24 h before.")


def sync_report(summary: str) -> dict[str, Any]:
    return ephemeral(escape(summary))


# --- "Add to timeline" shortcut --------------------------------------------------------------


def shortcut_without_incident() -> dict[str, Any]:
    return ephemeral("There is no incident in this channel, so there is no timeline to add to.")


def added_by_shortcut(incident_title: str, added: bool) -> dict[str, Any]:
    if added:
        return ephemeral(f"Added to the timeline of *{escape(incident_title)}*.")
    return ephemeral(f"That message is already on the timeline of *{escape(incident_title)}*.")


# --- buttons and forms -----------------------------------------------------------------------


def form_refused(code: str, retry: str = "press the button again") -> str:
    """Why a modal did not open (its trigger expired, Slack refused), and what to do."""
    return f"Slack would not open the form ({code}); {retry}."


def card_form_refused(code: str) -> str:
    """The same, for the card's Resolve and Continue buttons."""
    return f"Slack would not open the form ({code}). Press the button again."


def meeting_set_dm(problem: str) -> str:
    """The meeting form is gone when an announcement fails: the person hears it in a DM."""
    return warning_text(f"Review meeting set. {problem}")


# --- another workspace -----------------------------------------------------------------------


def other_workspace_text() -> str:
    return f":no_entry: {OTHER_WORKSPACE}"


def other_workspace_command() -> dict[str, Any]:
    """A slash command's answer (the request's own response) when it came from another workspace."""
    return {"response_type": "ephemeral", "text": other_workspace_text()}


def other_workspace_modal() -> dict[str, Any]:
    """What a view submission from another workspace gets instead of its form."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Not this workspace"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": other_workspace_text()}}],
    }
