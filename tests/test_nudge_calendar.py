"""Nudge timing (bot/nudge_calendar.py): pure functions, explicit datetimes, no real clock."""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import nudge_calendar
from bot.nudge_calendar import (
    ACTION_ITEM,
    MEETING_UNSCHEDULED,
    PlannedNudge,
    WorkingHours,
    add_business_days,
    escalation,
    meeting_agenda_at,
    meeting_deadline,
    next_action_item_nudge,
    next_meeting_nudge,
    next_working_instant,
    overdue_number,
    overdue_offset_days,
    publication_request_at,
    review_at,
)

NY, PARIS, TOKYO = "America/New_York", "Europe/Paris", "Asia/Tokyo"
DEFAULT = WorkingHours()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int, fold: int = 0) -> datetime:
    """A wall-clock time in `tz`, as the UTC instant the functions take and return."""
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC)


def wall(at: datetime, tz: str) -> datetime:
    return at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def in_hours(at: datetime, tz: str, hours: WorkingHours = DEFAULT) -> bool:
    """The plain reading of working hours, for hours that no DST change falls into."""
    w = wall(at, tz)
    return w.weekday() in hours.days and hours.start <= w.time() < hours.end


# --- WorkingHours.parse ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   "])
def test_parse_empty_is_the_default(text):
    assert WorkingHours.parse(text) == WorkingHours(time(9), time(17), frozenset({0, 1, 2, 3, 4}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-17:00 mon-fri", WorkingHours(time(9), time(17), frozenset({0, 1, 2, 3, 4}))),
        ("08:30-16:00 mon,tue,thu", WorkingHours(time(8, 30), time(16), frozenset({0, 1, 3}))),
        ("  7:45 - 15:15   MON-WED, Fri ", WorkingHours(time(7, 45), time(15, 15), frozenset({0, 1, 2, 4}))),
        ("10:00-18:00 sun-thu", WorkingHours(time(10), time(18), frozenset({6, 0, 1, 2, 3}))),
        ("10:00-18:00 fri-mon", WorkingHours(time(10), time(18), frozenset({4, 5, 6, 0}))),
        ("10:00-18:00 saturday", WorkingHours(time(10), time(18), frozenset({5}))),
        ("10:00-14:00", WorkingHours(time(10), time(14))),
    ],
)
def test_parse(text, expected):
    assert WorkingHours.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "9-5",
        "09:00 mon-fri",
        "17:00-09:00 mon-fri",
        "09:00-09:00",
        "25:00-26:00",
        "09:60-17:00",
        "09:00-17:00 funday",
        "09:00-17:00 mon-",
        "09:00-17:00 mon;tue",
        "nine to five",
    ],
)
def test_parse_rejects_bad_text_naming_the_format(text):
    with pytest.raises(ValueError, match='"09:00-17:00 mon-fri"'):
        WorkingHours.parse(text)


def test_working_hours_validate_themselves():
    with pytest.raises(ValueError):
        WorkingHours(days=frozenset())
    with pytest.raises(ValueError):
        WorkingHours(days=frozenset({7}))


# --- next_working_instant ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        # New York: inside, start inclusive, end exclusive, early morning.
        (NY, local(NY, 2026, 3, 3, 10), local(NY, 2026, 3, 3, 10)),
        (NY, local(NY, 2026, 3, 3, 9), local(NY, 2026, 3, 3, 9)),
        (NY, local(NY, 2026, 3, 3, 17), local(NY, 2026, 3, 4, 9)),
        (NY, local(NY, 2026, 3, 3, 7), local(NY, 2026, 3, 3, 9)),
        # 03:00 UTC Wednesday is still Tuesday evening in New York.
        (NY, utc(2026, 3, 4, 3), utc(2026, 3, 4, 14)),
        # Friday evening before the spring change (Sun Mar 8): Monday 09:00 is EDT, 13:00 UTC.
        (NY, local(NY, 2026, 3, 6, 17, 30), utc(2026, 3, 9, 13)),
        # Weekend of the autumn change (Sun Nov 1): Monday 09:00 is EST, 14:00 UTC.
        (NY, local(NY, 2026, 10, 31, 12), utc(2026, 11, 2, 14)),
        # Paris, weekend of the spring change (Sun Mar 29): Monday 09:00 CEST = 07:00 UTC.
        (PARIS, local(PARIS, 2026, 3, 27, 18), utc(2026, 3, 30, 7)),
        (PARIS, utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 7)),
        # Paris, weekend of the autumn change (Sun Oct 25): Monday 09:00 CET = 08:00 UTC.
        (PARIS, local(PARIS, 2026, 10, 23, 18), utc(2026, 10, 26, 8)),
        # Tokyo is ahead of UTC: Sunday 23:30 UTC is already Monday 08:30 there.
        (TOKYO, utc(2026, 3, 1, 23, 30), utc(2026, 3, 2, 0)),
        (TOKYO, local(TOKYO, 2026, 3, 6, 16, 59), local(TOKYO, 2026, 3, 6, 16, 59)),
        (TOKYO, local(TOKYO, 2026, 3, 6, 17), utc(2026, 3, 9, 0)),
        (TOKYO, local(TOKYO, 2026, 3, 7, 12), utc(2026, 3, 9, 0)),
    ],
)
def test_next_working_instant(tz, at, expected):
    assert next_working_instant(at, tz, DEFAULT) == expected
    assert next_working_instant(at, tz, DEFAULT).tzinfo == UTC


def test_unknown_time_zone_is_utc():
    at = utc(2026, 3, 7, 12)  # a Saturday
    assert next_working_instant(at, "Mars/Olympus_Mons", DEFAULT) == utc(2026, 3, 9, 9)
    assert next_working_instant(at, "", DEFAULT) == utc(2026, 3, 9, 9)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_working_instant(datetime(2026, 3, 3, 10), NY, DEFAULT)


def test_a_start_time_the_clocks_skip_opens_at_the_jump():
    """02:30 does not exist on the spring-forward night: the day starts when clocks jump to 03:00."""
    hours = WorkingHours.parse("02:30-10:00 sun")
    assert next_working_instant(local(NY, 2026, 3, 8, 0), NY, hours) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert next_working_instant(utc(2026, 3, 8, 6, 59), NY, hours) == utc(2026, 3, 8, 7)  # 01:59 EST
    assert next_working_instant(utc(2026, 3, 8, 7, 10), NY, hours) == utc(2026, 3, 8, 7, 10)
    assert next_working_instant(local(PARIS, 2026, 3, 29, 0), PARIS, hours) == utc(2026, 3, 29, 1)  # 03:00 CEST


def test_a_start_time_that_happens_twice_opens_the_first_time():
    hours = WorkingHours.parse("01:30-10:00 sun")
    # New York, Nov 1: 01:30 EDT (05:30 UTC) comes first, 01:30 EST (06:30 UTC) an hour later.
    assert next_working_instant(local(NY, 2026, 11, 1, 0), NY, hours) == utc(2026, 11, 1, 5, 30)
    # At 01:10 EST the clock reads earlier than 01:30 again, but the window is already open.
    assert next_working_instant(utc(2026, 11, 1, 6, 10), NY, hours) == utc(2026, 11, 1, 6, 10)
    # Paris, Oct 25: 02:30 CEST (00:30 UTC) is the first of the two.
    hours = WorkingHours.parse("02:30-10:00 sun")
    assert next_working_instant(local(PARIS, 2026, 10, 25, 0), PARIS, hours) == utc(2026, 10, 25, 0, 30)


def test_a_window_the_clocks_skip_entirely_waits_for_the_next_one():
    hours = WorkingHours.parse("02:10-02:40 sun")
    assert next_working_instant(local(NY, 2026, 3, 8, 0), NY, hours) == local(NY, 2026, 3, 15, 2, 10)


@pytest.mark.parametrize(
    ("tz", "change"),
    [
        (NY, date(2026, 3, 8)),
        (NY, date(2026, 11, 1)),
        (PARIS, date(2026, 3, 29)),
        (PARIS, date(2026, 10, 25)),
        (TOKYO, date(2026, 3, 8)),
    ],
)
def test_next_working_instant_matches_a_brute_force_scan_around_dst_changes(tz, change):
    """Every 5 minutes for twelve days around each change, against the plain definition."""
    start = datetime.combine(change - timedelta(days=6), time(), UTC)
    grid = [start + timedelta(minutes=5 * i) for i in range(12 * 24 * 12)]
    working = [at for at in grid if in_hours(at, tz)]
    for at in grid[: len(grid) * 2 // 3]:
        expected = working[bisect.bisect_left(working, at)]
        assert next_working_instant(at, tz, DEFAULT) == expected, at


def dst_changes(tz: str, year: int) -> list[datetime]:
    """The hours (UTC) in `year` during which the UTC offset of `tz` changes."""
    zone = ZoneInfo(tz)
    hours = [datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(366 * 24)]
    return [
        a
        for a, b in zip(hours, hours[1:], strict=False)
        if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset()
    ]


@pytest.mark.parametrize("tz", [NY, PARIS, "America/Santiago", "Australia/Lord_Howe"])
@pytest.mark.parametrize("hours", ["00:00-00:30 sat,sun", "01:30-02:45 sun", "02:10-02:40 sun", "09:00-17:00 mon-fri"])
def test_next_working_instant_is_consistent_on_dst_nights(tz, hours):
    """Around each change: never earlier than asked, inside its own window, one step at a time."""
    working = WorkingHours.parse(hours)
    for change in dst_changes(tz, 2026):
        grid = [change + timedelta(minutes=10 * i) for i in range(-3 * 144, 3 * 144)]
        got = [next_working_instant(at, tz, working) for at in grid]
        for at, result, next_at, next_result in zip(grid, got, grid[1:], got[1:], strict=False):
            assert at <= result and next_working_instant(result, tz, working) == result
            if next_at <= result:  # nothing opens in between: the same answer
                assert next_result == result, next_at


# --- Business days and meeting deadlines --------------------------------------------------------


def test_add_business_days():
    friday = utc(2026, 3, 6, 15)
    assert add_business_days(friday, 1) == utc(2026, 3, 9, 15)
    assert add_business_days(friday, 5) == utc(2026, 3, 13, 15)
    assert add_business_days(utc(2026, 3, 7, 10), 1) == utc(2026, 3, 9, 10)  # from a Saturday
    assert add_business_days(utc(2026, 3, 9, 10), -1) == utc(2026, 3, 6, 10)
    assert add_business_days(friday, 0) == friday


def test_add_business_days_counts_local_days_and_keeps_the_local_time_across_dst():
    # Friday 17:00 EST + 1 business day = Monday 17:00 EDT: 21:00 UTC, not 22:00.
    assert add_business_days(local(NY, 2026, 3, 6, 17), 1, NY) == utc(2026, 3, 9, 21)
    # Friday 08:00 in Tokyo is Thursday in UTC: count from Friday, land on Monday 08:00 JST.
    assert add_business_days(local(TOKYO, 2026, 3, 6, 8), 1, TOKYO) == local(TOKYO, 2026, 3, 9, 8)
    # Counted in UTC instead, that instant is Thursday 23:00: one business day on is Friday 23:00 UTC.
    assert add_business_days(local(TOKYO, 2026, 3, 6, 8), 1) == utc(2026, 3, 6, 23)


def test_meeting_deadline_by_severity():
    tuesday = utc(2026, 3, 3, 10)
    assert meeting_deadline(tuesday, 1) == utc(2026, 3, 5, 10)
    assert meeting_deadline(tuesday, 2) == utc(2026, 3, 6, 10)
    assert meeting_deadline(tuesday, 3) is None
    assert meeting_deadline(tuesday, 4) is None
    assert meeting_deadline(tuesday, 3, requested=True) == utc(2026, 3, 10, 10)  # 5 business days
    assert meeting_deadline(utc(2026, 3, 6, 10), 4, requested=True) == utc(2026, 3, 13, 10)


def test_sev2_resolved_friday_afternoon_is_due_monday_afternoon():
    assert meeting_deadline(local(NY, 2026, 3, 6, 15), 2, tz=NY) == utc(2026, 3, 9, 20)  # 16:00 EDT: 72 real hours


def test_meeting_deadline_is_capped_at_five_business_days(monkeypatch):
    # With 48 h and 72 h the cap never binds (5 business days are at least 5 calendar days),
    # so try a severity allowed ten days. No public holiday falls in the week of Mar 2 to 9.
    monkeypatch.setitem(nudge_calendar.SEVERITY_MEETING_HOURS, 1, 240)
    assert meeting_deadline(utc(2026, 3, 2, 10), 1) == utc(2026, 3, 9, 10)  # Mon -> next Mon, not Thu 12th
    assert meeting_deadline(local(PARIS, 2026, 3, 27, 18), 1, tz=PARIS) == local(PARIS, 2026, 4, 3, 18)
    monkeypatch.setitem(nudge_calendar.SEVERITY_MEETING_HOURS, 1, 24)
    assert meeting_deadline(utc(2026, 3, 2, 10), 1) == utc(2026, 3, 3, 10)


def test_meeting_agenda_publication_and_review_times():
    meeting = utc(2026, 3, 5, 15)
    assert meeting_agenda_at(meeting) == utc(2026, 3, 4, 15)
    assert publication_request_at(meeting) == utc(2026, 3, 5, 16)
    assert publication_request_at(meeting, timedelta(minutes=90)) == utc(2026, 3, 5, 16, 30)
    assert review_at(utc(2026, 3, 3, 10)) == utc(2026, 4, 2, 10)


# --- Slots and escalation ------------------------------------------------------------------------


def test_overdue_number_and_escalation():
    assert [
        overdue_number(s) for s in ("overdue-1", "overdue-12", "overdue-0", "overdue-x", "due", "x-overdue-3", None)
    ] == [1, 12, None, None, None, None, None]
    assert [escalation(f"overdue-{n}") for n in range(1, 8)] == [
        (False, False),
        (False, False),
        (True, False),
        (True, False),
        (True, True),
        (True, True),
        (True, True),
    ]
    assert escalation("due") == escalation("before") == escalation("assigned") == (False, False)


def test_overdue_cadence_slows_down():
    assert [overdue_offset_days(n) for n in range(1, 10)] == [1, 2, 4, 7, 14, 28, 56, 84, 112]
    with pytest.raises(ValueError):
        overdue_offset_days(0)


# --- next_action_item_nudge ------------------------------------------------------------------------

DUE = date(2026, 3, 16)  # a Monday


def plan(**changes) -> PlannedNudge | None:
    """An open, already-announced item of an owner in Tokyo, due Monday Mar 16."""
    args = dict(
        due=DUE,
        status="open",
        assigned_notified=True,
        last_slot=None,
        snoozed_until=None,
        now=local(TOKYO, 2026, 3, 2, 10),
        tz=TOKYO,
        hours=DEFAULT,
        last_sent_at=None,
    )
    return next_action_item_nudge(**(args | changes))


@pytest.mark.parametrize("status", ["done", "wont_do"])
def test_finished_items_get_no_nudge(status):
    assert plan(status=status) is None
    assert plan(status=status, assigned_notified=False) is None


def test_unknown_status_is_a_bug():
    with pytest.raises(ValueError, match="status"):
        plan(status="closed")


def test_assigned_goes_out_at_the_next_working_instant():
    assert plan(assigned_notified=False) == PlannedNudge(ACTION_ITEM, "assigned", local(TOKYO, 2026, 3, 2, 10))
    saturday = local(TOKYO, 2026, 3, 7, 10)
    assert plan(assigned_notified=False, now=saturday).not_before == local(TOKYO, 2026, 3, 9, 9)


def test_the_regular_sequence():
    assert plan() == PlannedNudge(ACTION_ITEM, "before", local(TOKYO, 2026, 3, 13, 9))
    assert plan(last_slot="before", now=local(TOKYO, 2026, 3, 13, 9)) == PlannedNudge(
        ACTION_ITEM, "due", local(TOKYO, 2026, 3, 16, 9)
    )
    assert plan(last_slot="due", now=local(TOKYO, 2026, 3, 16, 9)) == PlannedNudge(
        ACTION_ITEM, "overdue-1", local(TOKYO, 2026, 3, 17, 9)
    )
    assert plan(last_slot="overdue-6", now=local(TOKYO, 2026, 4, 13, 9)) == PlannedNudge(
        ACTION_ITEM, "overdue-7", local(TOKYO, 2026, 5, 11, 9)
    )


def test_in_progress_items_get_no_before_reminder():
    assert plan(status="in_progress") == PlannedNudge(ACTION_ITEM, "due", local(TOKYO, 2026, 3, 16, 9))


def test_a_late_before_goes_out_if_the_due_date_is_still_ahead():
    now = local(TOKYO, 2026, 3, 14, 10)  # Saturday, two days before: the Friday reminder was missed
    # Saturday and Sunday are not working days, and Monday is the due date: "due", never a stale "before".
    assert plan(now=now) == PlannedNudge(ACTION_ITEM, "due", local(TOKYO, 2026, 3, 16, 9))
    wednesday = local(TOKYO, 2026, 3, 11, 10)
    assert plan(due=date(2026, 3, 13), now=wednesday) == PlannedNudge(ACTION_ITEM, "before", wednesday)


def test_never_a_stale_before_once_the_due_date_has_come():
    now = local(TOKYO, 2026, 3, 16, 11)
    assert plan(now=now) == PlannedNudge(ACTION_ITEM, "due", now)


def test_after_downtime_only_the_latest_reminder_goes_out():
    """Last sent "before", the bot was down: one nudge, for the latest reminder whose day has come."""
    # Due 4 days ago: overdue-3 (day 4 <= 4 < day 7), right away.
    now = local(TOKYO, 2026, 3, 20, 11)
    assert plan(last_slot="before", now=now) == PlannedNudge(ACTION_ITEM, "overdue-3", now)
    # Due 10 days ago: overdue-4 (day 7 <= 10 < day 14); in the evening, at the next morning.
    now = local(TOKYO, 2026, 3, 26, 11)
    assert plan(last_slot="before", now=now) == PlannedNudge(ACTION_ITEM, "overdue-4", now)
    evening = local(TOKYO, 2026, 3, 26, 20)
    assert plan(last_slot="before", now=evening) == PlannedNudge(ACTION_ITEM, "overdue-4", local(TOKYO, 2026, 3, 27, 9))


def test_reminders_falling_on_a_weekend_collapse_into_one():
    saturday_due = date(2026, 3, 14)  # due Sat, overdue-1 Sun, overdue-2 Mon: one nudge on Monday
    got = plan(due=saturday_due, last_slot="before", now=local(TOKYO, 2026, 3, 11, 9))
    assert got == PlannedNudge(ACTION_ITEM, "overdue-2", local(TOKYO, 2026, 3, 16, 9))


def test_never_twice_on_the_same_local_day():
    # "assigned" went out this morning and "before" is already due: it waits for tomorrow.
    sent = local(TOKYO, 2026, 3, 11, 10)
    got = plan(due=date(2026, 3, 13), now=sent, last_sent_at=sent)
    assert got == PlannedNudge(ACTION_ITEM, "before", local(TOKYO, 2026, 3, 12, 9))
    # A nudge sent at 15:30 UTC on Tuesday was sent on Wednesday in Tokyo (00:30): the day of
    # overdue-2 is used up, so it goes out on Thursday morning, not Wednesday's.
    sent = utc(2026, 3, 17, 15, 30)
    got = plan(last_slot="overdue-1", now=sent, last_sent_at=sent)
    assert got == PlannedNudge(ACTION_ITEM, "overdue-2", local(TOKYO, 2026, 3, 19, 9))


def test_the_once_a_day_rule_uses_the_owners_day_across_a_dst_change():
    # Sent Saturday Oct 31 in New York; Sunday Nov 1 is 25 hours long; next is Monday 09:00 EST.
    sent = local(NY, 2026, 10, 30, 16)
    got = plan(tz=NY, due=date(2026, 10, 30), last_slot="due", now=sent, last_sent_at=sent)
    assert got == PlannedNudge(ACTION_ITEM, "overdue-2", utc(2026, 11, 2, 14))


def test_snooze_delays_the_nudge():
    after_due = dict(last_slot="due", now=local(TOKYO, 2026, 3, 16, 9, 30), last_sent_at=local(TOKYO, 2026, 3, 16, 9))
    # Snoozed until Tuesday 15:00: overdue-1 is still the reminder, just later that day.
    tuesday = local(TOKYO, 2026, 3, 17, 15)
    assert plan(snoozed_until=tuesday, **after_due) == PlannedNudge(ACTION_ITEM, "overdue-1", tuesday)
    # Snoozed past working hours or into a weekend: the next working instant after it.
    assert plan(snoozed_until=local(TOKYO, 2026, 3, 17, 19), **after_due).not_before == local(TOKYO, 2026, 3, 18, 9)
    assert plan(snoozed_until=local(TOKYO, 2026, 3, 21, 10), **after_due).not_before == local(TOKYO, 2026, 3, 23, 9)
    # Snoozed until Thursday: by then the item is 3 days late, so that is what the nudge is about.
    thursday = local(TOKYO, 2026, 3, 19, 12)
    assert plan(snoozed_until=thursday, **after_due) == PlannedNudge(ACTION_ITEM, "overdue-2", thursday)
    # A snooze that has ended changes nothing.
    assert plan(snoozed_until=local(TOKYO, 2026, 3, 10), **after_due) == plan(**after_due)


def test_unknown_last_slot_is_a_bug():
    with pytest.raises(ValueError, match="slot"):
        plan(last_slot="overdue")


def simulate(
    *,
    status: str = "open",
    down: tuple[datetime, datetime] | None = None,
    snooze: tuple[datetime, datetime] | None = None,
) -> list[tuple[str, datetime]]:
    """The bot's sweep, once an hour for 60 days, for an item created Mon Mar 2 10:00 in Tokyo.

    Like the sweep, it plans the next nudge after each one it sends and sends it once its
    time comes; while the bot is up, re-planning at any hour gives the same answer, so
    storing the plan (one pending row) is the same as asking again. After downtime it asks
    again before sending. `snooze` = (when the owner snoozes, until when).
    """
    created = local(TOKYO, 2026, 3, 2, 10)
    sent: list[tuple[str, datetime]] = []
    last_slot: str | None = None
    pending: PlannedNudge | None = None
    snoozed_until = None
    for hour in range(60 * 24):
        now = created + timedelta(hours=hour)
        if down and down[0] <= now < down[1]:
            pending = None
            continue
        if snooze and now == snooze[0]:
            snoozed_until, pending = snooze[1], None
        current = next_action_item_nudge(
            due=DUE,
            status=status,
            assigned_notified=bool(sent),
            last_slot=last_slot,
            snoozed_until=snoozed_until,
            now=now,
            tz=TOKYO,
            hours=DEFAULT,
            last_sent_at=sent[-1][1] if sent else None,
        )
        assert current is not None and current.not_before >= now
        if pending is not None:
            assert current == pending, now
        pending = current
        if now >= current.not_before:
            sent.append((current.slot, now))
            last_slot = current.slot
            pending = None
    return sent


def check_spacing(sent: list[tuple[str, datetime]]) -> None:
    slots = [slot for slot, _ in sent]
    days = [wall(at, TOKYO).date() for _, at in sent]
    assert len(set(slots)) == len(slots), "a slot was sent twice"
    assert len(set(days)) == len(days), "two nudges on one local day"
    assert all(in_hours(at, TOKYO) for _, at in sent), "a nudge outside working hours"


def test_sixty_days_of_an_open_item():
    sent = simulate()
    check_spacing(sent)
    assert sent == [
        ("assigned", local(TOKYO, 2026, 3, 2, 10)),
        ("before", local(TOKYO, 2026, 3, 13, 9)),
        ("due", local(TOKYO, 2026, 3, 16, 9)),
        ("overdue-1", local(TOKYO, 2026, 3, 17, 9)),
        ("overdue-2", local(TOKYO, 2026, 3, 18, 9)),
        ("overdue-3", local(TOKYO, 2026, 3, 20, 9)),
        ("overdue-4", local(TOKYO, 2026, 3, 23, 9)),
        ("overdue-5", local(TOKYO, 2026, 3, 30, 9)),
        ("overdue-6", local(TOKYO, 2026, 4, 13, 9)),
    ]
    overdue_gaps = [(b - a).days for (_, a), (_, b) in zip(sent[2:], sent[3:], strict=False)]
    assert overdue_gaps == sorted(overdue_gaps) == [1, 1, 2, 3, 7, 14]


def test_sixty_days_of_an_item_in_progress():
    sent = simulate(status="in_progress")
    check_spacing(sent)
    assert [slot for slot, _ in sent] == ["assigned", "due"] + [f"overdue-{n}" for n in range(1, 7)]


def test_a_week_of_downtime_yields_one_late_nudge():
    back = local(TOKYO, 2026, 3, 24, 12)
    sent = simulate(down=(local(TOKYO, 2026, 3, 17), back))
    check_spacing(sent)
    assert [s for s in sent if s[1] >= local(TOKYO, 2026, 3, 16, 10)] == [
        ("overdue-4", back),  # the one late nudge: 8 days overdue, reminder 4 (day 7) is current
        ("overdue-5", local(TOKYO, 2026, 3, 30, 9)),
        ("overdue-6", local(TOKYO, 2026, 4, 13, 9)),
    ]


def test_a_snooze_in_the_simulation():
    sent = simulate(snooze=(local(TOKYO, 2026, 3, 16, 11), local(TOKYO, 2026, 3, 25, 14)))
    check_spacing(sent)
    after = [s for s in sent if s[1] > local(TOKYO, 2026, 3, 16, 11)]
    assert after[0] == ("overdue-4", local(TOKYO, 2026, 3, 25, 14))
    assert [slot for slot, _ in after] == ["overdue-4", "overdue-5", "overdue-6"]


ZONES = [
    NY,
    PARIS,
    TOKYO,
    "UTC",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "Europe/London",
    "No/Such_Zone",
]
HOURS = [
    DEFAULT,
    WorkingHours.parse("08:30-16:00 mon,tue,thu"),
    WorkingHours.parse("10:00-18:00 sun-thu"),
    WorkingHours.parse("01:30-02:45 sun"),
    WorkingHours.parse("02:10-02:40 sat,sun"),
    WorkingHours.parse("00:00-00:30 sat,sun"),
    WorkingHours.parse("23:00-23:59 sun"),
]
SLOTS = [None, "assigned", "before", "due"] + [f"overdue-{n}" for n in range(1, 10)]
instants = st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    hours=st.sampled_from(HOURS),
    now=instants,
    due_in=st.integers(-400, 60),
    status=st.sampled_from(["open", "in_progress", "done", "wont_do"]),
    assigned=st.booleans(),
    last_slot=st.sampled_from(SLOTS),
    snooze=st.none() | st.timedeltas(timedelta(days=-5), timedelta(days=40)),
    sent_ago=st.none() | st.timedeltas(timedelta(0), timedelta(days=3)),
)
def test_property_nudges_land_in_working_hours_after_now(
    tz, hours, now, due_in, status, assigned, last_slot, snooze, sent_ago
):
    due = now.date() + timedelta(days=due_in)
    snoozed_until = now + snooze if snooze is not None else None
    last_sent_at = now - sent_ago if sent_ago is not None else None
    got = next_action_item_nudge(
        due=due,
        status=status,
        assigned_notified=assigned,
        last_slot=last_slot,
        snoozed_until=snoozed_until,
        now=now,
        tz=tz,
        hours=hours,
        last_sent_at=last_sent_at,
    )
    if status in ("done", "wont_do"):
        assert got is None
        return
    assert got is not None and got.kind == ACTION_ITEM
    assert got.not_before >= now and got.not_before.tzinfo == UTC
    assert next_working_instant(got.not_before, tz, hours) == got.not_before
    zone = ZoneInfo(tz) if tz in ZONES[:-1] else UTC
    day = got.not_before.astimezone(zone).date()
    assert day.weekday() in hours.days
    if snoozed_until is not None:
        assert got.not_before >= next_working_instant(snoozed_until, tz, hours)
    if last_sent_at is not None:
        assert day > last_sent_at.astimezone(zone).date()
    if not assigned:
        assert got.slot == "assigned"
    elif got.slot == "before":
        assert status == "open" and day < due
    else:
        assert rank(got.slot) > max(rank(last_slot), -1)


def rank(slot: str | None) -> int:
    """Position in the reminder sequence: assigned (or nothing yet) < before < due < overdue-n."""
    return {None: -2, "assigned": -2, "before": -1, "due": 0}.get(slot) or overdue_number(slot) or 0


@settings(max_examples=200, deadline=None)
@given(tz=st.sampled_from(ZONES), hours=st.sampled_from(HOURS), at=instants)
def test_property_next_working_instant(tz, hours, at):
    got = next_working_instant(at, tz, hours)
    assert at <= got < at + timedelta(days=15)
    assert next_working_instant(got, tz, hours) == got


# --- next_meeting_nudge --------------------------------------------------------------------------


def meeting(**changes) -> PlannedNudge | None:
    """A SEV2 resolved Monday Mar 2 at 20:00 in New York (after hours), deadline Thursday 20:00."""
    resolved = local(NY, 2026, 3, 2, 20)
    args = dict(
        resolved_at=resolved,
        deadline=meeting_deadline(resolved, 2, tz=NY),
        scheduled=False,
        last_sent_at=None,
        now=resolved,
        tz=NY,
        hours=DEFAULT,
    )
    return next_meeting_nudge(**(args | changes))


def test_meeting_nudges_stop_when_scheduled_or_not_needed():
    assert meeting(scheduled=True) is None
    assert meeting(deadline=None) is None


def test_first_meeting_nudge_at_the_next_working_instant_after_resolution():
    assert meeting() == PlannedNudge(MEETING_UNSCHEDULED, "2026-03-03", local(NY, 2026, 3, 3, 9))


def test_meeting_nudges_are_daily_then_one_final_overdue():
    sent: list[PlannedNudge] = []
    now = local(NY, 2026, 3, 2, 20)
    for _ in range(24 * 14):
        nudge = meeting(now=now, last_sent_at=sent[-1].not_before if sent else None)
        if nudge is not None and now >= nudge.not_before:
            sent.append(nudge)
        now += timedelta(hours=1)
    assert [(n.slot, n.not_before) for n in sent] == [
        ("2026-03-03", local(NY, 2026, 3, 3, 9)),
        ("2026-03-04", local(NY, 2026, 3, 4, 9)),
        ("2026-03-05", local(NY, 2026, 3, 5, 9)),
        ("overdue", local(NY, 2026, 3, 6, 9)),  # the deadline was Thursday 20:00
    ]


def test_meeting_nudges_skip_the_weekend():
    resolved = local(NY, 2026, 3, 6, 11)  # Friday; deadline 72 h later, Monday 12:00 EDT
    args = dict(
        resolved_at=resolved, deadline=meeting_deadline(resolved, 2, tz=NY), scheduled=False, tz=NY, hours=DEFAULT
    )
    first = next_meeting_nudge(**args, last_sent_at=None, now=resolved)
    assert first == PlannedNudge(MEETING_UNSCHEDULED, "2026-03-06", resolved)
    second = next_meeting_nudge(**args, last_sent_at=resolved, now=resolved)
    assert second == PlannedNudge(MEETING_UNSCHEDULED, "2026-03-09", utc(2026, 3, 9, 13))  # Monday 09:00 EDT
    last = next_meeting_nudge(**args, last_sent_at=second.not_before, now=second.not_before)
    assert last == PlannedNudge(MEETING_UNSCHEDULED, "overdue", utc(2026, 3, 10, 13))
    assert next_meeting_nudge(**args, last_sent_at=last.not_before, now=last.not_before) is None


@settings(max_examples=200, deadline=None)
@given(
    tz=st.sampled_from(ZONES),
    hours=st.sampled_from(HOURS),
    resolved_at=instants,
    severity=st.sampled_from([1, 2, 3]),
    after=st.timedeltas(timedelta(0), timedelta(days=12)),
    sent_ago=st.none() | st.timedeltas(timedelta(0), timedelta(days=2)),
)
def test_property_meeting_nudges_land_in_working_hours_after_now(tz, hours, resolved_at, severity, after, sent_ago):
    now = resolved_at + after
    last_sent_at = now - sent_ago if sent_ago is not None else None
    deadline = meeting_deadline(resolved_at, severity, requested=True, tz=tz)
    got = next_meeting_nudge(
        resolved_at=resolved_at,
        deadline=deadline,
        scheduled=False,
        last_sent_at=last_sent_at,
        now=now,
        tz=tz,
        hours=hours,
    )
    if last_sent_at is not None and last_sent_at >= deadline:
        assert got is None
        return
    assert got is not None and got.not_before >= now
    assert next_working_instant(got.not_before, tz, hours) == got.not_before
    if got.not_before < deadline:
        zone = ZoneInfo(tz) if tz in ZONES[:-1] else UTC
        assert got.slot == got.not_before.astimezone(zone).date().isoformat()
    else:
        assert got.slot == "overdue"
