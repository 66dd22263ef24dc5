"""When the bot may nudge someone, and about what: pure calendar arithmetic.

Nothing here reads a clock, Slack or the database. The caller passes `now`, the
recipient's IANA time zone and working hours, and what was sent last; it gets back the
next nudge to store (the database keeps one pending nudge per subject) or None.

Two promises shape everything below:

* A nudge lands inside the recipient's working hours, in their own time zone, so
  nobody is pinged at 3 a.m. because the incident happened on another continent.
* At most one nudge per subject per local day, and after an outage (or a snooze, or a
  weekend) one late nudge about where things stand now, never a burst of stale ones.

All datetimes in and out are timezone-aware and in UTC. Local wall-clock times only
exist inside this module. An unknown time zone name falls back to UTC rather than
failing: a bad profile setting should delay a reminder, not lose it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "WorkingHours",
    "PlannedNudge",
    "next_working_instant",
    "add_business_days",
    "meeting_deadline",
    "next_action_item_nudge",
    "overdue_number",
    "overdue_offset_days",
    "escalation",
    "next_meeting_nudge",
    "meeting_agenda_at",
    "publication_request_at",
    "review_at",
    "ACTION_ITEM",
    "MEETING_UNSCHEDULED",
    "SEVERITY_MEETING_HOURS",
    "MAX_MEETING_BUSINESS_DAYS",
    "REMIND_DAYS_BEFORE",
    "OVERDUE_CADENCE_DAYS",
    "LATER_OVERDUE_EVERY_DAYS",
    "ESCALATE_TO_COMMANDER_AFTER",
    "ESCALATE_TO_CHANNEL_AFTER",
    "REVIEW_AFTER_DAYS",
    "Snooze",
    "SNOOZES",
]

UTC = UTC

# Nudge kinds (the `kind` column of a nudge row).
ACTION_ITEM = "action_item"
MEETING_UNSCHEDULED = "meeting_unscheduled"

# How soon after resolution the post-mortem meeting should happen, by severity. SEV3 and
# SEV4 get a meeting only when someone asks for one; then only the business-day cap applies.
SEVERITY_MEETING_HOURS: dict[int, int] = {1: 48, 2: 72}
MAX_MEETING_BUSINESS_DAYS = 5

REMIND_DAYS_BEFORE = 3
# Days after the due date for overdue reminders 1..6. The gaps grow: a reminder a day
# is right for something just missed and nagging for something a month late.
OVERDUE_CADENCE_DAYS: tuple[int, ...] = (1, 2, 4, 7, 14, 28)
LATER_OVERDUE_EVERY_DAYS = 28
# Silence is not consent, but neither is a single missed date: the commander hears about
# it from overdue reminder 3 on, the whole incident channel from reminder 5 on.
ESCALATE_TO_COMMANDER_AFTER = 2
ESCALATE_TO_CHANNEL_AFTER = 4

REVIEW_AFTER_DAYS = 30


@dataclass(frozen=True)
class Snooze:
    """How long an owner may put off an action item's reminders, and how messages name it."""

    length: timedelta
    label: str  # in the DM's select: "1 day"
    phrase: str  # in a sentence: "snoozed for a day"


# The one table of snoozes, by the key the DM's select carries (option value "12:1d").
SNOOZES: dict[str, Snooze] = {
    "1d": Snooze(timedelta(days=1), "1 day", "a day"),
    "1w": Snooze(timedelta(weeks=1), "1 week", "a week"),
}

_CLOSED_STATUSES = frozenset({"done", "wont_do"})
_OPEN_STATUSES = frozenset({"open", "in_progress"})

_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NUMBERS = {name: n for n, name in enumerate(_DAY_NAMES)} | {name[:3]: n for n, name in enumerate(_DAY_NAMES)}
_HOURS_FORMAT = 'expected working hours like "09:00-17:00 mon-fri" or "08:30-16:00 mon,tue,thu"'
_HOURS_RE = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})(?:\s+(.+))?")
_OVERDUE_RE = re.compile(r"overdue-([1-9][0-9]*)")


# --- Time zones and wall-clock times ------------------------------------------------------


def _zone(tz: str | None) -> tzinfo:
    """The zone for an IANA name; UTC for an empty or unknown one (see the module docstring)."""
    if not tz:
        return UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_date(at: datetime, tz: str | None) -> date:
    """The calendar date at instant `at` in time zone `tz` (UTC when unknown)."""
    return at.astimezone(_zone(tz)).date()


# Public name for the bot's other modules: one place decides what an unknown zone means.
zone = _zone


def _utc(at: datetime, name: str) -> datetime:
    """`at` in UTC. A naive datetime is refused: guessing its zone is how reminders go out at night."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {at!r}")
    return at.astimezone(UTC)


def _wall(at: datetime, zone: tzinfo) -> datetime:
    """What a clock in `zone` reads at the instant `at` (naive)."""
    return at.astimezone(zone).replace(tzinfo=None)


def _first_instant_reading(wall: datetime, zone: tzinfo) -> datetime:
    """The first instant, in UTC, at which a clock in `zone` reads `wall` or later.

    Usually that is simply `wall` in `zone`. When clocks go back, `wall` happens twice and
    this is the first time. When clocks spring forward over `wall`, it never happens and
    this is the moment of the jump: the workday that "starts at 02:30" on that night
    starts when the clock, jumping from 02:00 to 03:00, first reads later than 02:30.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == wall:
        return first
    # In a gap, fold=0 reads `wall` with the old offset (an instant after the jump) and
    # fold=1 with the new one (an instant before it). zoneinfo does not expose transitions,
    # so find the jump between the two by bisection, to the microsecond.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = first
    while after - before > timedelta(microseconds=1):
        middle = before + (after - before) // 2
        if _wall(middle, zone) >= wall:
            after = middle
        else:
            before = middle
    return after


# --- Working hours -------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingHours:
    """When someone wants to hear from the bot: a daily window on some weekdays (Monday=0).

    The window is [start, end) in the person's own time zone and does not cross midnight.
    """

    start: time = time(9, 0)
    end: time = time(17, 0)
    days: frozenset[int] = _WEEKDAYS

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"working hours must end after they start, got {self.start}-{self.end}")
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"working days must be a non-empty set of 0 (Monday) .. 6 (Sunday), got {set(self.days)}")

    @classmethod
    def parse(cls, text: str | None) -> WorkingHours:
        """Read a profile setting such as "09:00-17:00 mon-fri" or "08:30-16:00 mon,tue,thu".

        None or blank means the default (09:00-17:00 Monday to Friday); leaving the days
        out means Monday to Friday. Day ranges may wrap ("fri-mon"). Anything else raises
        ValueError naming the expected format, so the settings UI can show it as is.
        """
        if text is None or not text.strip():
            return cls()
        match = _HOURS_RE.fullmatch(text.strip().lower())
        if match is None:
            raise ValueError(f"{_HOURS_FORMAT}, got {text!r}")
        start_h, start_m, end_h, end_m, day_text = match.groups()
        try:
            start = time(int(start_h), int(start_m))
            end = time(int(end_h), int(end_m))
            days = _parse_days(day_text) if day_text else _WEEKDAYS
            return cls(start, end, days)
        except ValueError as error:
            raise ValueError(f"{_HOURS_FORMAT}, got {text!r}: {error}") from None


def _parse_days(text: str) -> frozenset[int]:
    """ "mon-fri", "mon,tue,thu", "sun-thu", "fri-mon" (wraps), full names too."""
    days: set[int] = set()
    for part in text.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if first not in _DAY_NUMBERS or (dash and last not in _DAY_NUMBERS):
            raise ValueError(f"unknown day or day range {part!r}")
        a = _DAY_NUMBERS[first]
        b = _DAY_NUMBERS[last] if last else a
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def _window(day: date, hours: WorkingHours, zone: tzinfo) -> tuple[datetime, datetime]:
    """The working window of a local day as UTC instants [opens, closes)."""
    opens = _first_instant_reading(datetime.combine(day, hours.start), zone)
    closes = _first_instant_reading(datetime.combine(day, hours.end), zone)
    return opens, closes


def next_working_instant(at: datetime, tz: str, hours: WorkingHours) -> datetime:
    """`at` if it falls inside the working hours in `tz`, else when they next begin (UTC).

    A day's window opens the first time the local clock reads `hours.start` and closes the
    first time it reads `hours.end`, which keeps it well defined on the nights the clocks
    change (see `_first_instant_reading`).
    """
    at = _utc(at, "at")
    zone = _zone(tz)
    today = _wall(at, zone).date()
    # A working weekday comes round within a week (8 days if today's window is over); a
    # second week covers a window the clocks skip entirely on the night they spring forward.
    for offset in range(15):
        day = today + timedelta(days=offset)
        if day.weekday() not in hours.days:
            continue
        opens, closes = _window(day, hours, zone)
        if at < closes and opens < closes:  # empty if the clocks skip the whole window
            return max(at, opens)
    raise AssertionError("unreachable: WorkingHours always has a working day")


def _next_local_midnight(at: datetime, zone: tzinfo) -> datetime:
    """The start of the local day after the one `at` falls on, in UTC."""
    tomorrow = _wall(at, zone).date() + timedelta(days=1)
    return _first_instant_reading(datetime.combine(tomorrow, time(0, 0)), zone)


# --- Deadlines -----------------------------------------------------------------------------


def add_business_days(start: datetime, days: int, tz: str = "UTC") -> datetime:
    """`days` weekdays after `start` (before, if negative), at the same local time of day.

    Counted on the calendar of `tz`, where "Friday evening" is Friday evening. The wall
    clock is kept across DST changes (17:00 stays 17:00), because that is how people read
    "in five business days". Public holidays are not known here.
    """
    start = _utc(start, "start")
    if days == 0:
        return start
    zone = _zone(tz)
    local = _wall(start, zone)
    day, step, remaining = local.date(), (1 if days > 0 else -1), abs(days)
    while remaining:
        day += timedelta(days=step)
        if day.weekday() < 5:
            remaining -= 1
    return _first_instant_reading(datetime.combine(day, local.time()), zone)


def meeting_deadline(
    resolved_at: datetime, severity: int, *, requested: bool = False, tz: str = "UTC"
) -> datetime | None:
    """By when the post-mortem meeting should be held, or None if none is expected.

    SEV1 within 48 h, SEV2 within 72 h of resolution, while memories are fresh; never later
    than 5 business days after resolution, so a long weekend cannot stretch it. Other
    severities get a meeting only when asked for, and then just the 5-business-day cap.
    """
    resolved_at = _utc(resolved_at, "resolved_at")
    cap = add_business_days(resolved_at, MAX_MEETING_BUSINESS_DAYS, tz)
    if severity in SEVERITY_MEETING_HOURS:
        return min(resolved_at + timedelta(hours=SEVERITY_MEETING_HOURS[severity]), cap)
    return cap if requested else None


# --- Action-item reminders -----------------------------------------------------------------


@dataclass(frozen=True)
class PlannedNudge:
    """The next message the bot owes someone about one subject."""

    kind: str  # ACTION_ITEM or MEETING_UNSCHEDULED
    slot: str  # unique per (kind, subject): makes planning the same nudge twice harmless
    not_before: datetime  # UTC, already inside the recipient's working hours


def overdue_number(slot: str | None) -> int | None:
    """3 for "overdue-3"; None for any other slot."""
    match = _OVERDUE_RE.fullmatch(slot or "")
    return int(match.group(1)) if match else None


def overdue_offset_days(n: int) -> int:
    """Days after the due date that overdue reminder `n` (1-based) is for."""
    if n < 1:
        raise ValueError(f"overdue reminders count from 1, got {n}")
    if n <= len(OVERDUE_CADENCE_DAYS):
        return OVERDUE_CADENCE_DAYS[n - 1]
    return OVERDUE_CADENCE_DAYS[-1] + LATER_OVERDUE_EVERY_DAYS * (n - len(OVERDUE_CADENCE_DAYS))


def escalation(slot: str | None) -> tuple[bool, bool]:
    """(tell the commander, tell the incident channel) along with the nudge for `slot`."""
    n = overdue_number(slot)
    if n is None:
        return False, False
    return n > ESCALATE_TO_COMMANDER_AFTER, n > ESCALATE_TO_CHANNEL_AFTER


def _position(slot: str | None) -> int:
    """Where a slot sits in the reminder sequence: assigned < before < due < overdue-1 < ..."""
    if slot in (None, "assigned"):
        return -2
    if slot == "before":
        return -1
    if slot == "due":
        return 0
    n = overdue_number(slot)
    if n is None:
        raise ValueError(f"not an action-item slot: {slot!r}")
    return n


def _slots_after(last_slot: str | None, due: date, remind_days_before: int | None) -> Iterator[tuple[str, date]]:
    """The reminders still to come after `last_slot`, each with the local day it is for."""
    position = _position(last_slot)
    if remind_days_before is not None and position < -1:
        yield "before", due - timedelta(days=remind_days_before)
    if position < 0:
        yield "due", due
    n = max(position, 0) + 1
    while True:
        yield f"overdue-{n}", due + timedelta(days=overdue_offset_days(n))
        n += 1


def _current_slot(slots: Iterator[tuple[str, date]], today: date) -> tuple[str | None, date]:
    """The latest slot whose day has come by `today` (None if none has), and the day of the next one."""
    current: str | None = None
    for slot, day in slots:
        if day > today:
            return current, day
        current = slot
    raise AssertionError("unreachable: the overdue reminders never end")


def _earliest(
    now: datetime, snoozed_until: datetime | None, last_sent_at: datetime | None, tz: str, hours: WorkingHours
) -> datetime:
    """The first working instant at which the subject may be nudged at all.

    Not before now, not while snoozed, and not again on the local day of the last nudge.
    """
    earliest = now
    if snoozed_until is not None:
        earliest = max(earliest, _utc(snoozed_until, "snoozed_until"))
    if last_sent_at is not None:
        earliest = max(earliest, _next_local_midnight(_utc(last_sent_at, "last_sent_at"), _zone(tz)))
    return next_working_instant(earliest, tz, hours)


def next_action_item_nudge(
    *,
    due: date,
    status: str,
    assigned_notified: bool,
    last_slot: str | None,
    snoozed_until: datetime | None,
    now: datetime,
    tz: str,
    hours: WorkingHours,
    last_sent_at: datetime | None = None,
    remind_days_before: int = REMIND_DAYS_BEFORE,
) -> PlannedNudge | None:
    """The next reminder to plan for an action item after `last_slot` was sent, or None.

    The owner first hears that the item is theirs ("assigned"), then `remind_days_before`
    days ahead ("before"; not for items already in progress, nor once the due date has
    come), on the due date ("due"), and then ever more rarely while it stays open
    ("overdue-n", see OVERDUE_CADENCE_DAYS). Each goes out at the start of the owner's
    working day. `due` is a date on the owner's calendar.

    The slot is the one that is current when the nudge will go out: if the bot was down,
    the item snoozed, or several reminders fall on one weekend, the owner gets one nudge
    about where the item stands then (the latest reminder whose day has come), not a
    burst of stale ones. Snoozes and the once-a-day rule only ever move a nudge later.
    """
    if status in _CLOSED_STATUSES:
        return None
    if status not in _OPEN_STATUSES:
        raise ValueError(f"unknown action-item status {status!r}")
    now = _utc(now, "now")
    zone = _zone(tz)
    at = _earliest(now, snoozed_until, last_sent_at, tz, hours)
    if not assigned_notified:
        return PlannedNudge(ACTION_ITEM, "assigned", at)

    before = remind_days_before if status == "open" and remind_days_before > 0 else None
    while True:  # at most twice: the second time round, the upcoming slot's day has come
        current, upcoming_day = _current_slot(_slots_after(last_slot, due, before), _wall(at, zone).date())
        if current is not None:
            return PlannedNudge(ACTION_ITEM, current, at)
        # Nothing is due yet: wait for the start of the upcoming slot's working day.
        opens = _first_instant_reading(datetime.combine(upcoming_day, hours.start), zone)
        at = next_working_instant(max(at, opens), tz, hours)


# --- Post-mortem meeting -------------------------------------------------------------------


def next_meeting_nudge(
    *,
    resolved_at: datetime,
    deadline: datetime | None,
    scheduled: bool,
    last_sent_at: datetime | None,
    now: datetime,
    tz: str,
    hours: WorkingHours,
) -> PlannedNudge | None:
    """The next "please schedule the post-mortem meeting" nudge, or None.

    One a working day (slot = the local date) from resolution until the meeting is
    scheduled; once the deadline passes unscheduled, one last nudge (slot "overdue") and
    then silence: by then the commander and the channel know, and more DMs would be noise.
    The final nudge counts as sent once anything was sent at or after the deadline.
    """
    if scheduled or deadline is None:
        return None
    deadline = _utc(deadline, "deadline")
    if last_sent_at is not None and _utc(last_sent_at, "last_sent_at") >= deadline:
        return None
    zone = _zone(tz)
    at = _earliest(max(_utc(now, "now"), _utc(resolved_at, "resolved_at")), None, last_sent_at, tz, hours)
    slot = _wall(at, zone).date().isoformat() if at < deadline else "overdue"
    return PlannedNudge(MEETING_UNSCHEDULED, slot, at)


def meeting_agenda_at(meeting_at: datetime) -> datetime:
    """When to send the agenda: a day ahead, so people can read the draft first."""
    return _utc(meeting_at, "meeting_at") - timedelta(hours=24)


def publication_request_at(meeting_at: datetime, duration: timedelta = timedelta(hours=1)) -> datetime:
    """When to ask for the post-mortem to be published: as the meeting ends, while it is fresh."""
    return _utc(meeting_at, "meeting_at") + duration


def review_at(resolved_at: datetime) -> datetime:
    """When to look back at whether the follow-up worked: a month after resolution."""
    return _utc(resolved_at, "resolved_at") + timedelta(days=REVIEW_AFTER_DAYS)
