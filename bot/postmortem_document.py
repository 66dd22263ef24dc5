"""The post-mortem document: one data structure, rendered by Jinja2 templates.

`document_data` is the JSON export as it is; the Markdown and HTML templates render the same
data. Templates live in the repository's `templates/`; a directory named by
POSTMORTEM_TEMPLATES is searched first, so operators can override any of them.

Everything in the document that a person typed is untrusted: the HTML template is
autoescaped, and the Markdown template passes user text through `md_cell` (table cells),
`md_text` (prose) or `md_inline` (one-line values such as the title), so no text can add a
heading, a rule, a table column or raw HTML to the document.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from bot.links import split_http_url
from bot.postmortem_content import ACTION_STATUSES, ACTION_TYPES, CAUSE_CATEGORIES, PRIORITIES, PostmortemContent
from bot.views import ActionItemView, IncidentView, TimelineItem

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

POSTMORTEM_STATUSES: dict[str, str] = {"draft": "Draft", "in_review": "In review", "published": "Published"}
FORMATS = ("md", "html", "json")
TEMPLATE_NAMES = {"md": "postmortem.md.j2", "html": "postmortem.html.j2"}


def iso_utc(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration_text(seconds: int | None) -> str | None:
    """A duration as people read it: "45 s", "12 min", "1 h 47 min", "2 d 3 h".

    Seconds are shown only under a minute; longer durations are cut (not rounded) to the
    minute, as "lasted 1 h 47 min" is usually read.
    """
    if seconds is None or seconds < 0:
        return None
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(part for part in parts if part)


def _text(value: str | None) -> str:
    return (value or "").strip()


def _iso_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _action_item(item: ActionItemView) -> dict[str, Any]:
    return {
        "title": _text(item.title),
        "owner": item.owner_id,
        "due": _iso_date(item.due),
        "priority": item.priority,
        "type": item.type,
        "status": item.status,
        "ticket": {"key": item.ticket_key, "url": _text(item.ticket_url)} if _text(item.ticket_url) else None,
    }


def document_data(
    incident: IncidentView,
    items: Sequence[TimelineItem],
    *,
    content: PostmortemContent | None = None,
    action_items: Sequence[ActionItemView] = (),
    postmortem_status: str | None = None,
    authors: Sequence[str] = (),
    user_names: Mapping[str, str] | None = None,
    channel_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the document says, as plain JSON-able data.

    `content` is what people wrote in the post-mortem modal (None before anyone has); its
    title and severity win over the incident's, since the modal is where they get corrected.
    `action_items` are the incident's stored items. `user_names` and `channel_names` map ids to names (see
    `mentioned_ids`): the ids stay where the export contract promises them, and the
    templates show the names wherever one is known.
    """
    if postmortem_status is not None and postmortem_status not in POSTMORTEM_STATUSES:
        raise ValueError(f"unknown post-mortem status {postmortem_status!r}")
    written = content or PostmortemContent()
    duration_seconds: int | None = None
    if incident.resolved_at is not None:
        seconds = int((incident.resolved_at - incident.started_at).total_seconds())
        duration_seconds = seconds if seconds >= 0 else None
    category = written.cause_category or None
    impact = written.impact
    return {
        "title": (_text(content.title) if content else "") or incident.title,
        "severity": content.severity if content else incident.severity,
        "status": incident.status,
        "postmortem_status": postmortem_status,
        "team": incident.team_id,
        "channel": incident.channel_id,
        "channel_name": (channel_names or {}).get(incident.channel_id),
        "commander": incident.commander_id,
        "authors": list(authors),
        "user_names": dict(user_names or {}),
        "channel_names": dict(channel_names or {}),
        "started_at": iso_utc(incident.started_at),
        "resolved_at": iso_utc(incident.resolved_at),
        "duration": duration_text(duration_seconds),
        "duration_seconds": duration_seconds,
        "summary": _text(written.summary),
        "impact": {
            "users_affected": _text(impact.users_affected),
            "duration": _text(impact.duration),
            "revenue": _text(impact.revenue),
            "sla_breached": impact.sla_breached,
            "support_tickets": _text(impact.support_tickets),
        },
        "detection": {"how": _text(written.detection_how), "time_to_detect": _text(written.detection_time)},
        "timeline": [
            {
                "ts": item.ts,
                "time": iso_utc(item.occurred_at),
                "kind": item.kind,
                "user": item.user_id,
                "text": item.text,
                "thread_ts": item.thread_ts,
                "files": list(item.file_names),
                "edited": item.edited,
            }
            for item in items
        ],
        "root_cause": _text(written.root_cause),
        "whys": [why.strip() for why in written.whys if why and why.strip()],
        "contributing_factors": {
            "technical": _text(written.factors_technical),
            "process": _text(written.factors_process),
            "human": _text(written.factors_human),
        },
        "cause_category": category,
        "cause_category_label": CAUSE_CATEGORIES.get(category, category) if category else None,
        "went_well": _text(written.went_well),
        "went_wrong": _text(written.went_wrong),
        "lucky": _text(written.lucky),
        "lessons": _text(written.lessons),
        "action_items": [_action_item(item) for item in action_items],
    }


# --- Markdown escaping ------------------------------------------------------------------------

# Characters that, first on a line, can start a block: ATX heading (#), block quote (>),
# bullet list or thematic break (- + * _), setext underline (= -), code fence (` ~), table
# row or delimiter row (| :). A backslash before any ASCII punctuation is a CommonMark
# escape: it renders as the character itself, so the escaped line reads exactly as typed.
_BLOCK_START = frozenset("#>-+*_=`~|:")
_ORDERED_LIST = re.compile(r"^(\d{1,9})([.)])")
# CommonMark ends a line at any of these; a lone "\r" left in a cell would end the row.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _md_escape_inline(text: str) -> str:
    # Backslashes first, so a typed "\|" cannot undo our escapes; "<" so nothing typed
    # becomes raw HTML (an unclosed "<!--" would hide the rest of the document) or an
    # autolink; "[" and "]" so "[text](url)", "![](image)" and "[ref]: url" stay text: a
    # link whose words hide where it goes, or an image fetched when the document is
    # opened, must not come from what someone typed.
    return text.replace("\\", "\\\\").replace("<", "\\<").replace("[", "\\[").replace("]", "\\]")


def _md_escape_line(line: str) -> str:
    # Leading whitespace goes: four spaces would start a code block.
    line = _md_escape_inline(line.strip())
    if line and line[0] in _BLOCK_START:
        return "\\" + line
    return _ORDERED_LIST.sub(r"\1\\\2", line, count=1)


def md_cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks kept as <br>."""
    text = "" if value is None else str(value)
    text = _md_escape_inline(text).replace("|", "\\|")
    return "<br>".join(line.strip() for line in _LINE_BREAK.split(text))


def md_inline(value: Any) -> str:
    """One line of text (a title, a label), whatever line breaks it held."""
    text = "" if value is None else str(value)
    return _md_escape_inline(" ".join(text.split()))


def md_text(value: Any, indent: int = 0) -> str:
    """Prose that stays prose: every line is kept (as a hard line break), blank lines still
    separate paragraphs, and no line can start a heading, rule, list, quote, fence, table or
    HTML block. `indent` is the width of the list marker the text continues, if any."""
    text = "" if value is None else str(value)
    pad = " " * indent
    paragraphs: list[list[str]] = [[]]
    for raw in _LINE_BREAK.split(text):
        line = _md_escape_line(raw)
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    blocks = [("  \n" + pad).join(lines) for lines in paragraphs if lines]
    return ("\n\n" + pad).join(blocks)


def md_ticket(value: Any) -> str:
    """A ticket cell: an autolink for an http(s) URL, anything else as inert text."""
    url = http_url(value)
    if url:
        return "<" + url.replace("|", "%7C") + ">"
    return md_cell(value)  # brackets escaped there: no link syntax survives


# --- helpers shared by both formats -----------------------------------------------------------

# What a link in a document may not hold: it would end the Markdown autolink or the HTML
# attribute it stands in.
_URL_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\]")


def http_url(value: Any) -> str | None:
    """The value if it is an http(s) link (bot/links.py) safe to put in a document, else None.

    Anything else (javascript:, data:, relative paths, text with spaces or quotes) is shown
    as text, never linked.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or _URL_FORBIDDEN.search(url) or split_http_url(url) is None:
        return None
    return url


def utc_text(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_date(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d")


def _names(context: Context, key: str) -> Mapping[str, str]:
    doc = context.get("doc")
    names = doc.get(key) if isinstance(doc, Mapping) else None
    return names if isinstance(names, Mapping) else {}


@pass_context
def person(context: Context, user_id: str | None) -> str:
    """A person by display name when the document knows it, else by user id."""
    if not user_id:
        return ""
    return _names(context, "user_names").get(user_id) or user_id


@pass_context
def people(context: Context, user_ids: Sequence[str] | None) -> str:
    return ", ".join(person(context, user_id) for user_id in user_ids or ())


@pass_context
def channel(context: Context, channel_id: str | None) -> str:
    """A channel as people know it, "#name", when the document knows the name, else its id."""
    if not channel_id:
        return ""
    name = _names(context, "channel_names").get(channel_id)
    return f"#{name}" if name else channel_id


# Mentions as message text is stored (bot.payloads.plain_text): "@U0123ABCD", "#C0123ABCD"
# when Slack's markup gave no name, which it no longer does for people.
USER_MENTION = re.compile(r"(?<![\w@])@([UW][A-Z0-9]{8,20})\b")
CHANNEL_MENTION = re.compile(r"(?<![\w#])#([CG][A-Z0-9]{8,20})\b")


def mentioned_ids(texts: Sequence[str | None]) -> tuple[set[str], set[str]]:
    """The user and channel ids mentioned in `texts`, so the document can name them."""
    users: set[str] = set()
    channels: set[str] = set()
    for text in texts:
        if text:
            users.update(USER_MENTION.findall(text))
            channels.update(CHANNEL_MENTION.findall(text))
    return users, channels


@pass_context
def mentions(context: Context, text: str | None) -> str:
    """Message text with mentions by name ("@bob", "#inc-db") where the document knows it.

    The result is still untrusted text: the escaping filters come after this one."""
    if not text:
        return ""
    users = _names(context, "user_names")
    channels = _names(context, "channel_names")
    text = USER_MENTION.sub(lambda m: "@" + users.get(m.group(1), m.group(1)), text)
    return CHANNEL_MENTION.sub(lambda m: "#" + channels.get(m.group(1), m.group(1)), text)


def label(key: str | None, labels: Mapping[str, str]) -> str:
    """The label of a known key, the key itself otherwise (old data, a new option)."""
    if key is None:
        return ""
    return labels.get(key, key)


def yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


# select_autoescape looks at how the name ends, so ".html.j2" has to be named: with "html"
# alone the HTML template would render user text unescaped. Markdown is never autoescaped
# (HTML entities would show up literally); its filters do the escaping instead.
_AUTOESCAPE = select_autoescape(
    enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
    default_for_string=False,
    default=False,
)


def template_environment() -> Environment:
    search = [str(TEMPLATES_DIR)]
    override = os.environ.get("POSTMORTEM_TEMPLATES")
    if override:
        search.insert(0, override)
    env = Environment(
        loader=FileSystemLoader(search),
        autoescape=_AUTOESCAPE,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md_cell=md_cell,
        md_text=md_text,
        md_inline=md_inline,
        md_ticket=md_ticket,
        http_url=http_url,
        utc=utc_text,
        utc_date=utc_date,
        person=person,
        people=people,
        channel=channel,
        mentions=mentions,
        label=label,
        yes_no=yes_no,
    )
    env.globals.update(
        POSTMORTEM_STATUSES=POSTMORTEM_STATUSES,
        PRIORITIES=PRIORITIES,
        ACTION_TYPES=ACTION_TYPES,
        ACTION_STATUSES=ACTION_STATUSES,
    )
    return env


def _render(template_name: str, data: Mapping[str, Any]) -> str:
    text = template_environment().get_template(template_name).render(doc=data)
    return text if text.endswith("\n") else text + "\n"


def render_markdown(data: Mapping[str, Any]) -> str:
    return _render(TEMPLATE_NAMES["md"], data)


def render_html(data: Mapping[str, Any]) -> str:
    return _render(TEMPLATE_NAMES["html"], data)


def render(data: Mapping[str, Any], fmt: str = "md") -> str:
    """The document in one of FORMATS: "md", "html" or "json"."""
    if fmt == "md":
        return render_markdown(data)
    if fmt == "html":
        return render_html(data)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown document format {fmt!r}; expected one of {', '.join(FORMATS)}")
