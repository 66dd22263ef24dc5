"""The `/postmortem stats` answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.postmortem_content import CAUSE_CATEGORIES
from bot.postmortem_document import duration_text
from bot.ui.text import severity_label
from bot.views import TeamStats


def duration_label(value: timedelta | None) -> str:
    return (duration_text(int(value.total_seconds())) or "0 s") if value is not None else "n/a"


def share_label(part: int, whole: int) -> str:
    return f"{part} of {whole} ({round(100 * part / whole)}%)" if whole else "none yet"


def stats_message(stats: TeamStats) -> dict[str, Any]:
    """An ephemeral message: every number is the bot's own, so nothing here needs escaping."""
    if not stats.incidents:
        text = f"No incidents were declared in the last {stats.days} days."
        return {
            "response_type": "ephemeral",
            "text": text,
            "blocks": [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()],
        }
    severity = ", ".join(f"{severity_label(sev)} {n}" for sev, n in stats.by_severity.items())
    causes = ", ".join(f"{CAUSE_CATEGORIES.get(cause, 'Not yet known')} {n}" for cause, n in stats.by_cause.items())
    lines = [
        f"*Incidents:* {stats.incidents} ({severity})",
        f"*Causes:* {causes}",
        f"*Time to resolve* (median of {stats.resolved}): {duration_label(stats.median_time_to_resolve)}",
        f"*Time from resolution to post-mortem* (median): {duration_label(stats.median_time_to_postmortem)}",
        f"*Post-mortems:* {stats.postmortems_submitted} written, {stats.postmortems_published} published",
        f"*Action items:* {stats.items} in all; done on time {share_label(stats.items_done_on_time, stats.items_done)}; "
        f"{stats.items_open_overdue} open past their due date; {stats.items_wont_do} won't do",
    ]
    header = f"Post-mortem stats, last {stats.days} days"
    blocks = [
        HeaderBlock(text=header),
        SectionBlock(text=MarkdownTextObject(text="\n".join(lines))),
        ContextBlock(elements=[MarkdownTextObject(text="Only you can see this message.")]),
    ]
    return {
        "response_type": "ephemeral",
        "text": header + "\n" + "\n".join(lines),
        "blocks": [b.to_dict() for b in blocks],
    }
