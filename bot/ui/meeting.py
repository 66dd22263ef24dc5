"""The post-mortem's review meeting: the commander's reminder, the meeting form, the
channel's announcement, the agenda a day before, the request to publish, and the 30-day
review of the action items.

Pure builders (no Slack calls, no database), each returning chat.postMessage arguments
({"text", "blocks"}) or a views.open `view`, within Slack's limits. The incident is an
IncidentView (bot/views.py); `deadline` is named only where it is set. Action items are
ActionItemViews, listed as bot/ui/item_messages.py names them.

Interactivity, for the listeners: the reminder's button is card.SCHEDULE_MEETING (value
str(incident id)); the form is MEETING_CALLBACK (private_metadata {"incident_id": id},
`read_incident_id`), its inputs have fixed block ids (MEETING_*_BLOCK) and action ids
(MEETING_*_ACTION), and `read_meeting` reads view.state.values and never raises.

Size: besides the 50-block and 3,000-character limits, the agenda and the 30-day review
keep all their block text under MAX_BLOCKS_TEXT (msg_blocks_too_long); whatever does not
fit is counted in the message, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DatePickerElement,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
    TimePickerElement,
    UserMultiSelectElement,
)

from bot.postmortem_content import ACTION_STATUSES, PRIORITIES
from bot.ui.card import CONTINUE_POSTMORTEM, SCHEDULE_MEETING
from bot.ui.item_messages import item_title
from bot.ui.text import (
    MAX_BLOCKS_TEXT,
    MAX_INCIDENT_TITLE,
    MAX_MESSAGE_BLOCKS,
    MAX_NOTE,
    MAX_SECTION_TEXT,
    MAX_TITLE_INLINE,
    as_date,
    button_value,
    channel_link,
    context,
    cut_mrkdwn,
    date_label,
    days_text,
    element_state,
    escape_line,
    mention,
    message,
    metadata_id,
    modal,
    packed_list,
    people_list,
    plain,
    read_text,
    section,
    severity_label,
    slack_date,
    text_size,
    utc_label,
    valid_user_id,
)
from bot.views import ActionItemView, IncidentView

MEETING_CALLBACK = "meeting_modal"
MEETING_DATE_BLOCK = "meeting_date"
MEETING_DATE_ACTION = "date"
MEETING_TIME_BLOCK = "meeting_time"
MEETING_TIME_ACTION = "time"
MEETING_ATTENDEES_BLOCK = "meeting_attendees"
MEETING_ATTENDEES_ACTION = "attendees"
MEETING_LOCATION_BLOCK = "meeting_location"
MEETING_LOCATION_ACTION = "location"

MAX_LIST_SECTION = 2500  # each list of the 30-day review, so four of them fit MAX_BLOCKS_TEXT

_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})(?::\d{2})?")


def read_incident_id(private_metadata: Any) -> int | None:
    """The incident id of the meeting modal's private_metadata; None if it is not there."""
    return metadata_id(private_metadata, "incident_id")


def _incident_title(incident: IncidentView, limit: int = MAX_INCIDENT_TITLE) -> str:
    return escape_line(incident.title, limit) or "this incident"


def _button(incident: IncidentView, block_id: str, label: str, action_id: str) -> ActionsBlock:
    """The message's one button, acting on the incident (its value is the incident id)."""
    button = ButtonElement(text=plain(label), action_id=action_id, value=button_value(incident.id), style="primary")
    return ActionsBlock(block_id=block_id, elements=[button])


def meeting_unscheduled(incident: IncidentView) -> dict[str, Any]:
    """DM to the commander while no review meeting is scheduled, with "Schedule meeting"."""
    title = _incident_title(incident)
    sev = severity_label(incident.severity)
    deadline = incident.deadline
    by = f" Hold it by {slack_date(deadline)}." if isinstance(deadline, datetime) else ""
    resolved = incident.resolved_at
    when = f" was resolved {slack_date(resolved)}" if isinstance(resolved, datetime) else " is resolved"
    blocks: list[Block] = [
        section(
            f":calendar: *Schedule the post-mortem meeting*\n"
            f"*{title}*{f' ({sev})' if sev else ''} in {channel_link(incident.channel_id)}{when}.{by}"
        ),
        context(
            "Press *Schedule meeting* to pick a time and who comes. I'll post it in the channel "
            "and send the draft timeline and agenda a day before."
        ),
        _button(incident, "meeting_actions", "Schedule meeting", SCHEDULE_MEETING),
    ]
    fallback = f"Schedule the post-mortem meeting for {_incident_title(incident, 200)}"
    if isinstance(deadline, datetime):
        fallback += f" by {utc_label(deadline)}"
    return message(fallback, blocks)


def meeting_modal(
    incident: IncidentView, *, initial_attendees: Sequence[str], timezone: str | None = None
) -> dict[str, Any]:
    """The meeting form: date, time, attendees (required), place or link (optional).

    The time is read as the submitter's local time: Slack returns "HH:MM" without a zone,
    so the service combines it with the submitter's time zone (`timezone`, when given, is
    only named in the hint).
    """
    attendees = list(dict.fromkeys(u for u in initial_attendees if valid_user_id(u)))[:100]
    deadline = incident.deadline
    lines = [f"*{_incident_title(incident)}*"] if incident.title else []
    if isinstance(deadline, datetime):
        lines.append(f"Hold it by {slack_date(deadline)}.")
    lines.append("Invite the responders: they get the agenda and draft timeline a day before.")
    zone = escape_line(timezone, 60) if timezone else ""
    blocks = [
        section("\n".join(lines)),
        InputBlock(
            block_id=MEETING_DATE_BLOCK,
            label=plain("Date"),
            element=DatePickerElement(action_id=MEETING_DATE_ACTION, placeholder=plain("Pick a date")),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_TIME_BLOCK,
            label=plain("Start time"),
            hint=plain(f"In your time zone ({zone})." if zone else "In your own time zone."),
            element=TimePickerElement(action_id=MEETING_TIME_ACTION, placeholder=plain("Pick a time")),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_ATTENDEES_BLOCK,
            label=plain("Who should come?"),
            element=UserMultiSelectElement(
                action_id=MEETING_ATTENDEES_ACTION,
                initial_users=attendees or None,
                placeholder=plain("Responders, the commander, the service owners"),
            ),
            optional=False,
        ),
        InputBlock(
            block_id=MEETING_LOCATION_BLOCK,
            label=plain("Where"),
            element=PlainTextInputElement(
                action_id=MEETING_LOCATION_ACTION,
                max_length=MAX_NOTE,
                placeholder=plain("A room, or a video call link"),
            ),
            optional=True,
        ),
    ]
    return modal(
        MEETING_CALLBACK, "Post-mortem meeting", "Schedule", blocks, {"incident_id": int(button_value(incident.id))}
    )


def read_meeting(values: Any) -> tuple[date | None, time | None, list[str], str]:
    """(date, time, attendee user ids, place) from the meeting modal; never raises."""
    raw_day = element_state(values, MEETING_DATE_BLOCK, MEETING_DATE_ACTION).get("selected_date")
    day = None
    if isinstance(raw_day, str) and len(raw_day) == 10:
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            day = None
    raw_time = element_state(values, MEETING_TIME_BLOCK, MEETING_TIME_ACTION).get("selected_time")
    at = None
    match = _TIME_RE.fullmatch(raw_time) if isinstance(raw_time, str) else None
    if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
        at = time(int(match.group(1)), int(match.group(2)))
    users = element_state(values, MEETING_ATTENDEES_BLOCK, MEETING_ATTENDEES_ACTION).get("selected_users")
    attendees = list(dict.fromkeys(u for u in users if valid_user_id(u))) if isinstance(users, list) else []
    return day, at, attendees, read_text(values, MEETING_LOCATION_BLOCK, MEETING_LOCATION_ACTION, MAX_NOTE)


def meeting_scheduled(
    incident: IncidentView, *, at: datetime, attendees: Sequence[str], by: str, location: str = ""
) -> dict[str, Any]:
    """The channel's announcement of the review meeting (times in each reader's zone)."""
    title = _incident_title(incident)
    lines = [
        f":calendar: *Post-mortem meeting: {slack_date(at, '{date_long_pretty} at {time}')}*",
        f"For *{title}*, scheduled by {mention(by)}.",
        f"*Who:* {people_list(attendees)}",
    ]
    place = escape_line(location, MAX_NOTE)
    if place:
        lines.append(f"*Where:* {place}")
    blocks: list[Block] = [
        section("\n".join(lines)),
        context(
            "Blameless: we look at how systems and processes failed, not at who. "
            "The draft timeline and agenda come here a day before; add anything missing to the timeline now."
        ),
    ]
    return message(f"Post-mortem meeting for {_incident_title(incident, 200)}: {utc_label(at)}", blocks)


AGENDA = (
    "*Agenda*\n"
    "1. *Timeline review:* what happened, when, and what we knew at the time\n"
    '2. *Root cause:* ask "why?" five times, about systems, not people\n'
    "3. *What could be better:* detection, response, tools, process\n"
    "4. *What went well*\n"
    "5. *Action items:* each with one owner and a due date"
)


def _item_line(item: ActionItemView, today: date | None = None) -> str:
    bits = [f"due {date_label(item.due)}"]
    due = as_date(item.due)
    if today and due and due < today and not item.closed:
        bits[0] += f", {days_text((today - due).days)} late"
    priority = str(item.priority or "")
    if priority in PRIORITIES:
        bits.append(priority)
    status = ACTION_STATUSES.get(str(item.status))
    if status:
        bits.append(status.lower())
    return f"• {item_title(item, MAX_TITLE_INLINE)} — {mention(item.owner_id, '_no owner_')}, {', '.join(bits)}"


def _completion_review(items: Sequence[ActionItemView], today: date) -> list[Block]:
    """Earlier incidents' open items of the same cause: is it done yet?"""
    if not items:
        return []
    lines = [f"{_item_line(a, today)} ({escape_line(a.incident_title, 60)})" for a in items]
    head = "*Is it done yet?* Open action items of earlier incidents with the same cause"
    return [section(packed_list(head, lines, MAX_LIST_SECTION))]


def meeting_agenda(
    incident: IncidentView,
    *,
    at: datetime,
    timeline_lines: Sequence[str],
    action_items: Sequence[ActionItemView],
    earlier_items: Sequence[ActionItemView] = (),
) -> dict[str, Any]:
    """Posted in the channel a day before the meeting: the agenda, the action items so far,
    the open items of earlier incidents of the same cause category (the "is it done yet"
    round), and the draft timeline (lines of mrkdwn made by the caller), packed into sections
    as far as one message holds; what did not fit is counted."""
    lines = list(timeline_lines)
    actions = list(action_items)
    title = _incident_title(incident)
    action_lines = [_item_line(a) for a in actions]
    blocks: list[Block] = [
        HeaderBlock(text=plain("Post-mortem meeting agenda")),
        section(
            f":spiral_calendar_pad: *{title}* · meeting {slack_date(at)}\n"
            "Please read the draft timeline below before we meet. Missing or wrong? Reply in this thread, "
            "or add it with `/postmortem note HH:MM what happened`."
        ),
        section(AGENDA),
        section(
            packed_list("*Action items so far*", action_lines, MAX_LIST_SECTION)
            if action_lines
            else "*Action items so far*\n_None yet: we'll agree them in the meeting._"
        ),
        *_completion_review(earlier_items, at.date()),
        section(f"*Draft timeline* · {len(lines)} {'entry' if len(lines) == 1 else 'entries'}"),
    ]
    used = sum(text_size(b.to_dict()) for b in blocks)
    block_room = MAX_MESSAGE_BLOCKS - len(blocks) - 1  # one block kept for the "not shown" note
    char_room = MAX_BLOCKS_TEXT - used - 300
    sections: list[str] = []
    chunk: list[str] = []
    size = 0
    shown = 0
    for raw in lines:
        line = cut_mrkdwn(str(raw), MAX_SECTION_TEXT)
        joined = len("\n".join(chunk + [line]))
        if chunk and joined > MAX_SECTION_TEXT:
            sections.append("\n".join(chunk))
            chunk = []
        if not chunk and len(sections) >= block_room:
            break
        if size + len(line) + 1 > char_room:
            break
        chunk.append(line)
        size += len(line) + 1
        shown += 1
    if chunk:
        sections.append("\n".join(chunk))
    blocks += [section(s) for s in sections]
    left_out = len(lines) - shown
    if not lines:
        blocks.append(
            context(
                "_The timeline is empty: react with :pushpin: to the messages that matter, or use `/postmortem note`._"
            )
        )
    elif left_out:
        blocks.append(
            context(
                f"{left_out} later {'entry is' if left_out == 1 else 'entries are'} not shown here "
                "(one Slack message holds only so much): the post-mortem document has the full timeline."
            )
        )
    fallback = f"Post-mortem meeting agenda for {_incident_title(incident, 200)}, meeting at {utc_label(at)}"
    return message(fallback, blocks)


def publication_request(incident: IncidentView, *, deadline: datetime) -> dict[str, Any]:
    """After the meeting: finish and publish the post-mortem, with the button to open it."""
    title = _incident_title(incident)
    blocks: list[Block] = [
        section(
            f":memo: *Time to publish the post-mortem*\n*{title}* in {channel_link(incident.channel_id)}: "
            f"the review meeting is done. Add what was agreed, then press *Publish* by {slack_date(deadline)} "
            "so everyone can learn from it."
        ),
        _button(incident, "publication_actions", "Open post-mortem", CONTINUE_POSTMORTEM),
    ]
    return message(
        f"Please publish the post-mortem of {_incident_title(incident, 200)} by {utc_label(deadline)}", blocks
    )


def review_30_days(incident: IncidentView, *, items: Sequence[ActionItemView], today: date) -> dict[str, Any]:
    """Thirty days on: how the action items stand, with owners, the late ones first."""
    items = list(items)
    done = [i for i in items if i.status == "done"]
    wont = [i for i in items if i.status == "wont_do"]
    still = [i for i in items if not i.closed]
    overdue = [i for i in still if (as_date(i.due) or today) < today]
    open_ = [i for i in still if (as_date(i.due) or today) >= today]
    overdue.sort(key=lambda i: as_date(i.due) or today)
    counts = f"{len(done)} done · {len(open_)} open · {len(overdue)} overdue" + (
        f" · {len(wont)} won't do" if wont else ""
    )
    title = _incident_title(incident)
    blocks: list[Block] = [
        HeaderBlock(text=plain("30-day action item review")),
        section(f":mag: *{title}* in {channel_link(incident.channel_id)}\n{counts}"),
    ]
    if not items:
        blocks.append(section("_This post-mortem has no action items._"))
    elif not still:
        blocks.append(section(f":tada: All {len(items)} action items are closed. Thank you!"))
    for label, group in (("Overdue", overdue), ("Open", open_), ("Done", done)):
        if group:
            lines = [_item_line(i, today) for i in group]
            blocks.append(section(packed_list(f"*{label}* ({len(group)})", lines, MAX_LIST_SECTION)))
    if wont:
        lines = [
            f"• {item_title(i, MAX_TITLE_INLINE)} — {escape_line(i.status_note, 150) or '_no reason given_'}"
            for i in wont
        ]
        blocks.append(section(packed_list(f"*Won't do* ({len(wont)})", lines, MAX_LIST_SECTION)))
    if still:
        blocks.append(
            context(
                "Owners: update your items with the buttons in my DMs. Commander: find new owners for anything stuck."
            )
        )
    return message(f"30-day review of {_incident_title(incident, 200)}: {counts}", blocks)
