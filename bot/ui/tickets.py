"""Messages about action items' tickets: the DM redrawn after a tracker change, conflicts,
and the problems the commander is told once."""

from __future__ import annotations

from typing import Any

from bot.ui.item_messages import WHAT_DONE, action_item_answered, item_title
from bot.ui.text import escape, mention

_FIELD_NAMES = {"status": "status", "due": "due date", "owner": "owner"}


def item_dm(item: Any, tracker: str | None) -> dict[str, Any]:
    """The item's DM as it now is, with a line saying what the tracker did."""
    key = escape(item.ticket_key or "its ticket")
    if tracker is None:
        line = f":ticket: Tracked as {key}"
    elif item.status == "done":
        line = f":white_check_mark: Marked done in {tracker} ({key})"
    elif item.status == "wont_do":
        line = f":no_entry_sign: Canceled in {tracker} ({key})"
    else:
        line = f":arrows_counterclockwise: Changed in {tracker} ({key})"
    message = action_item_answered(item, by="", what=WHAT_DONE)
    for block in message.get("blocks") or []:
        if block.get("type") == "context":
            block["elements"] = [{"type": "mrkdwn", "text": line}]
    return message


def conflict_note(item: Any, conflicts: list[tuple[str, str]], tracker: str) -> dict[str, Any]:
    """In the DM's thread: both sides changed the same thing; the later change won."""
    parts = []
    for name, winner in conflicts:
        side = tracker if winner == "tracker" else "Slack"
        other = "Slack" if winner == "tracker" else tracker
        parts.append(
            f"the {_FIELD_NAMES.get(name, name)} was changed in both; the later change, in {side}, wins over {other}'s"
        )
    text = f":twisted_rightwards_arrows: {escape(item.ticket_key or '')}: " + "; ".join(parts) + "."
    return {"text": text}


def tracker_refused(item: Any, problem: str) -> dict[str, Any]:
    text = (
        f":warning: I could not keep the ticket of *{item_title(item, 200)}* in step: {escape(problem)}. "
        "Nothing is lost: I keep trying, and tickets follow once this is fixed."
    )
    return {"text": text}


def owner_not_found(item: Any, tracker: str, key: str, email: str | None) -> dict[str, Any]:
    who = mention(item.owner_id)
    if email:
        why = f"{tracker} has no user with {who}'s Slack email ({escape(email)})"
    else:
        why = f"Slack did not give me {who}'s email (the `users:read.email` scope, or a hidden profile)"
    return {"text": f":bust_in_silhouette: {escape(key)} is unassigned: {why}. Assign it in {tracker}."}


def ticket_gone(item: Any, problem: str) -> dict[str, Any]:
    return {
        "text": f":wastebasket: The ticket of *{item_title(item, 200)}* is gone ({escape(problem)}): "
        "the action item goes on here; link a new ticket in the post-mortem form if you want one."
    }
