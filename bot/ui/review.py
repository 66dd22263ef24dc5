"""The quarterly review: the private answer to `/postmortem review` and the quarter's post."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, ImageBlock

from bot.postmortem_content import CAUSE_CATEGORIES
from bot.ui.stats import duration_label, share_label
from bot.ui.text import (
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    MAX_TITLE_INLINE,
    channel_link,
    context,
    date_label,
    escape_line,
    mention,
    message,
    packed_list,
    section,
    severity_label,
    truncate,
)
from bot.views import QuarterReview, TeamStats

CAUSE_LABELS = {**CAUSE_CATEGORIES, "unknown": "Not yet known"}


def _against(now: int, before: int) -> str:
    return f"{now} (previous quarter {before})"


def _trend(now: timedelta | None, before: timedelta | None) -> str:
    """The median, and which way it went against the previous quarter's."""
    text = duration_label(now)
    if now is None or before is None:
        return text + (f" (previous quarter {duration_label(before)})" if before is not None else "")
    way = "faster" if now < before else "slower" if now > before else "the same"
    return f"{text} (previous quarter {duration_label(before)}: {way})"


def _counts(now: dict[Any, int], before: dict[Any, int], label: Any) -> str:
    keys = list(now) + [k for k in before if k not in now]
    return ", ".join(f"{label(k)} {_against(now.get(k, 0), before.get(k, 0))}" for k in keys) or "none"


def numbers_lines(stats: TeamStats, previous: TeamStats) -> list[str]:
    """The review's numbers, each against the previous quarter's (the same as `/postmortem stats`)."""
    return [
        f"*Incidents:* {_against(stats.incidents, previous.incidents)}",
        f"*By severity:* {_counts(stats.by_severity, previous.by_severity, severity_label)}",
        f"*By cause:* {_counts(stats.by_cause, previous.by_cause, lambda c: CAUSE_LABELS.get(c, c))}",
        f"*Time to resolve* (median of {stats.resolved}): "
        f"{_trend(stats.median_time_to_resolve, previous.median_time_to_resolve)}",
        f"*Time from resolution to post-mortem* (median): "
        f"{_trend(stats.median_time_to_postmortem, previous.median_time_to_postmortem)}",
        f"*Action items:* {stats.items} in all; done on time {share_label(stats.items_done_on_time, stats.items_done)}; "
        f"done late {stats.items_done_late}; won't do {stats.items_wont_do}; "
        f"{stats.items_open_overdue} open past their due date",
        f"*Post-mortems:* {stats.postmortems_submitted} written, {stats.postmortems_published} published",
    ]


def review_message(review: QuarterReview, *, chart_file_id: str | None = None, private: bool = False) -> dict[str, Any]:
    """The review as a message (chat.postMessage arguments; with `private`, an ephemeral answer)."""
    stats, previous = review.stats, review.previous
    when = f", so far (as of {date_label(review.as_of)})" if review.so_far else ""
    header = f"Quarterly review {stats.period}{when}"
    lines = numbers_lines(stats, previous)
    blocks: list[Block] = [HeaderBlock(text=truncate(header, MAX_HEADER_TEXT)), section("\n".join(lines))]
    if review.recurring:
        groups = [
            f"• *{escape_line(g.reason, 80)}*: {len(g.incidents)} incidents ("
            + "; ".join(f"{escape_line(i.title, 60)} {channel_link(i.channel_id)}" for i in g.incidents[:6])
            + ("; …" if len(g.incidents) > 6 else "")
            + ")"
            for g in review.recurring
        ]
        blocks.append(
            section(packed_list(":repeat: *Recurring: give these a deeper review*", groups, MAX_SECTION_TEXT))
        )
    if review.graveyard:
        graves = [
            f"• {escape_line(a.title, MAX_TITLE_INLINE)}: {mention(a.owner_id)}, due {date_label(a.due)} "
            f"({escape_line(a.incident_title, 60)})"
            for a in review.graveyard
        ]
        head = f":headstone: *The graveyard: {review.graveyard_total} action items open past their due date*"
        blocks.append(section(packed_list(head, graves, MAX_SECTION_TEXT)))
    if review.unpublished:
        unpublished = [f"• {escape_line(i.title, 80)} {channel_link(i.channel_id)}" for i in review.unpublished]
        head = f":memo: *{len(review.unpublished)} post-mortems not yet published*"
        blocks.append(section(packed_list(head, unpublished, MAX_SECTION_TEXT)))
    if chart_file_id:
        blocks += [
            DividerBlock(),
            ImageBlock(
                slack_file={"id": chart_file_id},
                alt_text=f"Incidents per cause category per month and the on-time rate, {stats.period}",
                title=f"Incidents by cause, {stats.period}",
            ),
        ]
    if private:
        blocks.append(context("Only you can see this message."))
    result = message(header + "\n" + "\n".join(lines), blocks)
    if private:
        result["response_type"] = "ephemeral"
    return result
