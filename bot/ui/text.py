"""Text helpers for Slack: escaping user text, dates shown in each reader's time zone, limits."""

from __future__ import annotations

from datetime import datetime, timezone

# Block Kit and message limits (../shared/slack-reference/README.md), enforced here once.
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_MODAL_TITLE = 24
MAX_FALLBACK_TEXT = 4000  # the notification text; Slack truncates at 40,000 but nobody reads that


def escape(text: str | None) -> str:
    """Escape user text for mrkdwn: only &, < and > (Slack's rule), so `<!channel>` cannot ping."""
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut `text` to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis


def utc_label(at: datetime) -> str:
    """The instant in UTC, as documents and fallbacks show it: 2026-11-23 14:05 UTC."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(at: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A `<!date>` token: Slack renders it in each reader's own time zone, UTC where it cannot."""
    return f"<!date^{int(at.timestamp())}^{fmt}|{utc_label(at)}>"


def mention(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id else "someone"


def severity_label(severity: int) -> str:
    return f"SEV{severity}"
