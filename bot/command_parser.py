"""Parsing `/postmortem` text. Pure: no Slack, no database; wrong input raises UsageError."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import date, time

from bot.payloads import GROUP_MENTION, SPECIAL_MENTION, plain_text


class UsageError(ValueError):
    """The command was not understood; the message says what to type instead."""


@dataclass(frozen=True)
class Start:
    title: str
    severity: int


@dataclass(frozen=True)
class Note:
    text: str
    at: time | None


@dataclass(frozen=True)
class ShowTimeline:
    pass


@dataclass(frozen=True)
class Resolve:
    pass


@dataclass(frozen=True)
class Publish:
    pass


@dataclass(frozen=True)
class Sync:
    pass


@dataclass(frozen=True)
class Stats:
    days: int


@dataclass(frozen=True)
class Review:
    quarter: str | None  # "2026-Q1"; None: the quarter so far


@dataclass(frozen=True)
class AddActionItem:
    owner: str  # a Slack user id
    due: date
    title: str


@dataclass(frozen=True)
class Meeting:
    day: date
    at: time
    attendees: tuple[str, ...]  # user ids


@dataclass(frozen=True)
class ChooseTracker:
    args: str  # "jira KEY", "linear KEY" or "none": the tickets' owner checks it


@dataclass(frozen=True)
class Help:
    problem: str | None = None


Command = (
    Start
    | Note
    | ShowTimeline
    | Resolve
    | Publish
    | Sync
    | Stats
    | Review
    | AddActionItem
    | Meeting
    | ChooseTracker
    | Help
)

DEFAULT_SEVERITY = 3
SEVERITY_FLAG = re.compile(r"(?:^|\s)--sev(?:erity)?(?:\s+|=)(?:sev)?(\S+)", re.IGNORECASE)
NOTE_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?:\s+|$)")
ACTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>\s+(\d{4}-\d{2}-\d{2})\s+(.+)$", re.DOTALL)


def parse(text: str) -> Command:
    """The subcommand in `text` (what follows `/postmortem`)."""
    text = (text or "").strip()
    if not text:
        return Help()
    name, _, rest = text.partition(" ")
    name = name.lower()
    rest = rest.strip()
    if name == "start":
        return _parse_start(rest)
    if name == "note":
        return _parse_note(rest)
    if name == "timeline":
        return ShowTimeline()
    if name == "resolve":
        return Resolve()
    if name == "publish":
        return Publish()
    if name == "sync":
        return Sync()
    if name == "stats":
        return _parse_stats(rest)
    if name == "review":
        return _parse_review(rest)
    if name == "action":
        return _parse_action(rest)
    if name == "meeting":
        return _parse_meeting(rest)
    if name == "tracker":
        return ChooseTracker(rest)
    if name == "help":
        return Help()
    return Help(problem=f"I don't know `{name}`.")


def _parse_start(rest: str) -> Start:
    severity = DEFAULT_SEVERITY
    match = SEVERITY_FLAG.search(rest)
    if match:
        value = match.group(1)
        if not value.isdigit() or not 1 <= int(value) <= 4:
            raise UsageError(
                f"Severity must be 1 to 4 (1 is the worst), not `{value}`: `/postmortem start <title> --sev 2`."
            )
        severity = int(value)
        rest = (rest[: match.start()] + " " + rest[match.end() :]).strip()
    if "--sev" in rest.lower():
        raise UsageError("Give the severity as `--sev 1` to `--sev 4`: `/postmortem start <title> --sev 2`.")
    title = plain_text(_unquote(rest))
    if not title:
        raise UsageError("Give the incident a title: `/postmortem start Checkout failing --sev 1`.")
    return Start(title=title, severity=severity)


def _parse_stats(rest: str) -> Stats:
    from bot.stats import DEFAULT_DAYS, MAX_DAYS

    if not rest:
        return Stats(days=DEFAULT_DAYS)
    if not rest.isdigit() or not 1 <= int(rest) <= MAX_DAYS:
        raise UsageError(f"Give the period in days, 1 to {MAX_DAYS}: `/postmortem stats 30` (default {DEFAULT_DAYS}).")
    return Stats(days=int(rest))


def _parse_review(rest: str) -> Review:
    from bot.stats import Quarter

    if not rest:
        return Review(quarter=None)
    quarter = Quarter.parse(rest)
    if quarter is None or not 2000 <= quarter.year <= 2999:
        raise UsageError("Name the quarter as YEAR-Qn: `/postmortem review 2026-Q1` (default: this quarter so far).")
    return Review(quarter=quarter.label)


def _parse_note(rest: str) -> Note:
    at = None
    match = NOTE_TIME.match(rest)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour > 23 or minute > 59:
            raise UsageError(f"`{match.group(0).strip()}` is not a time of day: use HH:MM, 00:00 to 23:59.")
        at = time(hour, minute)
        rest = rest[match.end() :].strip()
    rest = plain_text(rest)
    if not rest:
        raise UsageError("Say what happened: `/postmortem note 14:05 Rolled back the deploy`.")
    return Note(text=rest, at=at)


def _parse_action(rest: str) -> AddActionItem:
    usage = "`/postmortem action @owner YYYY-MM-DD <what will be done>`"
    if GROUP_MENTION.match(rest) or SPECIAL_MENTION.match(rest):
        raise UsageError(f"An action item needs one person as its owner, not a group: {usage}.")
    match = ACTION.match(rest.strip())
    if not match:
        raise UsageError(f"Give an owner, a due date and a title: {usage}.")
    owner, due_text, title = match.groups()
    try:
        due = date.fromisoformat(due_text)
    except ValueError:
        raise UsageError(f"`{due_text}` is not a date: use YYYY-MM-DD, e.g. {usage}.") from None
    title = plain_text(title).strip()
    if not title:
        raise UsageError(f"Say what will be done: {usage}.")
    return AddActionItem(owner=owner, due=due, title=title)


MEETING = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2})\b(.*)$", re.DOTALL)
MENTIONED = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _parse_meeting(rest: str) -> Meeting:
    usage = "`/postmortem meeting YYYY-MM-DD HH:MM [@attendees]` (your time zone)"
    match = MEETING.match(rest.strip())
    if not match:
        raise UsageError(f"Give the date and time of the review meeting: {usage}.")
    day_text, hour, minute, tail = match.groups()
    try:
        day = date.fromisoformat(day_text)
        at = time(int(hour), int(minute))
    except ValueError:
        raise UsageError(f"`{day_text} {hour}:{minute}` is not a date and time: {usage}.") from None
    if GROUP_MENTION.search(tail):
        raise UsageError("Invite people by name, not groups: the bot sends each attendee the agenda.")
    return Meeting(day=day, at=at, attendees=tuple(dict.fromkeys(MENTIONED.findall(tail))))


def _unquote(text: str) -> str:
    """Strip one pair of surrounding quotes, as people type titles both ways."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        try:
            return " ".join(shlex.split(text))
        except ValueError:
            return text[1:-1].strip()
    return text
