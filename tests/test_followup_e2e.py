"""Follow-through end to end: days of time driven with `postmortem-bot sweep --at` (a real
process), DM buttons pressed through the signed driver, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.nudges import NUDGE_EVENT_TYPE
from storage.models import ActionItem, Nudge
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, Rig

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
PARIS = ZoneInfo("Europe/Paris")  # BOB's time zone in the emulated workspace


async def sweep_at(rig: Rig, at: datetime) -> list[str]:
    """One `postmortem-bot sweep --at` run against the rig's database and Slack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | {
        "SLACK_BOT_TOKEN": rig.emulator.bot_token,
        "SLACK_API_URL": rig.emulator.api_url,
        "DATABASE_URL": rig.url,
    }
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "sweep",
        "--at",
        at.isoformat(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    return [
        line
        for line in out.decode().splitlines()
        if line.startswith("sent ")
        or line.startswith("recovered ")
        or line.startswith("failed ")
        or line.startswith("retry ")
    ]


async def nudges(rig: Rig, **where: str) -> list[Nudge]:
    async with rig.bot.services.timeline.sessions() as session:
        stmt = select(Nudge).order_by(Nudge.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(Nudge, key) == value)
        return list(await session.scalars(stmt))


async def pending(rig: Rig, kind: str = "action_item") -> Nudge:
    async def one() -> Nudge | None:
        rows = await nudges(rig, status="pending", kind=kind)
        return rows[-1] if rows else None

    return await rig.eventually(one)


def wednesday_after(rig: Rig, days: int) -> date:
    """A due date on a Wednesday: reminders falling on a weekend merge into Monday's."""
    day = rig.today("Europe/Paris") + timedelta(days=days)
    return day + timedelta(days=(2 - day.weekday()) % 7)


async def item_with_owner(
    rig: Rig, owner: str = BOB, due_in_days: int = 7, title: str = "Add a p99 alert on checkout at 800 ms"
) -> ActionItem:
    due = wednesday_after(rig, due_in_days).isoformat()
    before = len(rig.emulator.responses())
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{owner}|x> {due} {title}")
    answer = (await rig.responses(before + 1))[-1]
    assert "Action item added" in answer["text"], answer["text"]
    async with rig.bot.services.timeline.sessions() as session:
        return (await session.scalars(select(ActionItem).order_by(ActionItem.id.desc()))).first()


def dm_messages(rig: Rig, user: str) -> list[dict]:
    return [m for m in rig.emulator.messages_in_dm(user) if m.get("user") == rig.emulator.bot_user_id]


def in_working_hours(at: datetime, tz: ZoneInfo = PARIS) -> bool:
    local = at.astimezone(tz)
    return local.weekday() < 5 and 9 <= local.hour < 17


async def test_reminders_follow_the_owner_through_the_weeks_exactly_once(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig, due_in_days=6)
    row = await pending(rig)
    assert (row.slot, row.recipient) == ("assigned", BOB) and in_working_hours(row.not_before)

    assert await sweep_at(rig, row.not_before - timedelta(minutes=1)) == [], "nothing before its time"
    assert await sweep_at(rig, row.not_before) == [f"sent action_item/action_item:{item.id}/assigned"]
    assert await sweep_at(rig, row.not_before) == [], "the same sweep twice sends nothing twice"
    (dm,) = dm_messages(rig, BOB)
    assert dm["metadata"]["event_type"] == NUDGE_EVENT_TYPE
    assert "item_done" in json.dumps(dm["blocks"]) and "Add a p99 alert" in json.dumps(dm["blocks"])

    sent_slots, sent_days = [], set()
    for _ in range(8):
        row = await pending(rig)
        assert in_working_hours(row.not_before), f"{row.slot} at {row.not_before} is outside Paris working hours"
        local_day = row.not_before.astimezone(PARIS).date()
        assert local_day not in sent_days, "never twice a day"
        lines = await sweep_at(rig, row.not_before)
        assert f"sent action_item/action_item:{item.id}/{row.slot}" in lines
        sent_slots.append(row.slot)
        sent_days.add(local_day)
    assert sent_slots[:3] == ["before", "due", "overdue-1"]
    assert [s for s in sent_slots if s.startswith("overdue")] == [f"overdue-{n}" for n in range(1, 7)]
    commander = [n.slot for n in await nudges(rig, kind="overdue_commander", status="sent")]
    channel = [n.slot for n in await nudges(rig, kind="overdue_channel", status="sent")]
    assert commander == ["overdue-3", "overdue-4", "overdue-5", "overdue-6"] and channel == ["overdue-5", "overdue-6"]
    assert len(dm_messages(rig, BOB)) == 9


async def test_a_day_down_sends_the_missed_reminder_once_late_without_a_burst(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig, due_in_days=1)
    row = await pending(rig)
    await sweep_at(rig, row.not_before)  # the assignment
    # Down for ten days past the due date: one current reminder, not every missed one.
    late = datetime.combine(item.due + timedelta(days=10), datetime.min.time(), PARIS).replace(hour=11).astimezone(UTC)
    while late.astimezone(PARIS).weekday() >= 5:
        late += timedelta(days=1)
    lines = [line for line in await sweep_at(rig, late) if line.startswith("sent action_item/")]
    assert len(lines) == 1 and "overdue-4" in lines[0], lines
    assert len(dm_messages(rig, BOB)) == 2


async def press(rig: Rig, user: str, owner: str, action_id: str) -> None:
    dm = dm_messages(rig, owner)[-1]
    channel = rig.emulator.open_dm(owner)
    assert (await rig.driver.click_message_button(channel, dm["ts"], user, action_id)).status == 200


async def item_state(rig: Rig, item_id: int) -> ActionItem:
    async with rig.bot.services.timeline.sessions() as session:
        return await session.get(ActionItem, item_id)


async def test_dm_buttons_write_back_and_only_the_owner_or_commander_may_press(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig)
    await sweep_at(rig, (await pending(rig)).not_before)

    await press(rig, CAROL, BOB, "item_in_progress")
    refusal = (await rig.responses(2))[-1]
    assert "Only the owner" in refusal["text"]
    assert (await item_state(rig, item.id)).status == "open"

    await press(rig, BOB, BOB, "item_in_progress")

    async def in_progress() -> bool:
        return (await item_state(rig, item.id)).status == "in_progress"

    await rig.eventually(in_progress)
    dm = dm_messages(rig, BOB)[-1]

    async def dm_updated() -> bool:
        return any(c["args"].get("ts") == dm["ts"] and c["ok"] for c in rig.emulator.calls_to("chat.update"))

    await rig.eventually(dm_updated)
    assert "in progress" in json.dumps(rig.emulator.message(rig.emulator.open_dm(BOB), dm["ts"])["blocks"]).lower()

    async def thread_reply() -> bool:
        return any(
            m.get("thread_ts") and f"<@{BOB}> started on" in m.get("text", "")
            for m in rig.emulator.messages(INCIDENT_CHANNEL)
        )

    await rig.eventually(thread_reply)

    channel = rig.emulator.open_dm(BOB)
    await rig.driver.choose_in_message(channel, dm["ts"], BOB, "item_snooze", f"{item.id}:1w")
    await rig.driver.submit_view(await rig.latest_view("item_snooze_modal"), BOB)  # the reason is optional

    async def snoozed() -> bool:
        return (await item_state(rig, item.id)).snoozed_until is not None

    await rig.eventually(snoozed)
    row = await pending(rig)
    assert row.not_before >= (await item_state(rig, item.id)).snoozed_until - timedelta(minutes=1)

    await press(rig, ALICE, BOB, "item_done")  # the commander may

    async def done() -> bool:
        return (await item_state(rig, item.id)).status == "done"

    await rig.eventually(done)

    async def nothing_pending() -> bool:
        return await nudges(rig, status="pending", kind="action_item") == []

    await rig.eventually(nothing_pending)  # a done item is not nudged


async def test_change_due_and_wont_do_go_through_their_modals(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig)
    await sweep_at(rig, (await pending(rig)).not_before)
    await press(rig, BOB, BOB, "item_change_due")
    view = await rig.latest_view("item_change_due_modal")
    past = (rig.today() - timedelta(days=2)).isoformat()
    answer = (await rig.driver.submit_view(view, BOB, {"item_due": past})).json()
    assert answer["response_action"] == "errors"
    new_due = (rig.today() + timedelta(days=30)).isoformat()
    assert (await rig.driver.submit_view(view, BOB, {"item_due": new_due})).status == 200

    async def moved() -> bool:
        return (await item_state(rig, item.id)).due.isoformat() == new_due

    await rig.eventually(moved)

    await press(rig, BOB, BOB, "item_wont_do")
    view = await rig.latest_view("item_wont_do_modal")
    empty = (await rig.driver.submit_view(view, BOB)).json()
    assert empty["response_action"] == "errors"
    await rig.driver.submit_view(view, BOB, {"item_wont_do_reason": "Superseded by the cache rewrite (OPS-77)"})

    async def wont() -> bool:
        state = await item_state(rig, item.id)
        return state.status == "wont_do" and "OPS-77" in (state.status_note or "")

    await rig.eventually(wont)


async def test_a_deactivated_owner_is_reported_to_the_commander(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig, owner=CAROL)
    rig.emulator.deactivate_user(CAROL)
    rig.bot.services.people._cache.clear()
    lines = await sweep_at(rig, (await pending(rig)).not_before)
    assert lines == [f"failed action_item/action_item:{item.id}/assigned (user_disabled)"]
    told = dm_messages(rig, ALICE)
    assert told and "Add a p99 alert" in json.dumps(told[-1])


async def test_a_crash_between_send_and_mark_sends_nothing_twice_and_loses_nothing(rig: Rig) -> None:
    await rig.start_incident()
    sent_item = await item_with_owner(rig, title="Add a load test at 2x peak")
    lost_item = await item_with_owner(rig, owner=CAROL, title="Add a runbook link to the alert")
    rows = {n.subject: n for n in await nudges(rig, status="pending", kind="action_item")}
    # The crash happened ten minutes ago, just after the first DM went out (below).
    at = rig.clock.now()
    crashed_at = at - timedelta(minutes=10)
    # A sweeper claimed both, sent the first, and died before marking either.
    first = rows[f"action_item:{sent_item.id}"]
    await rig.bot.client.chat_postMessage(
        channel=BOB,
        text="(sent before the crash)",
        metadata={"event_type": NUDGE_EVENT_TYPE, "event_payload": {"key": first.key}},
    )
    async with rig.bot.services.timeline.sessions.begin() as session:
        for row in rows.values():
            stored = await session.get(Nudge, row.id)
            stored.status, stored.claimed_by, stored.claimed_at = "claimed", "dead-sweeper", crashed_at
    lines = await sweep_at(rig, at)
    assert f"recovered {first.key} (already in Slack)" in lines
    assert f"sent {rows[f'action_item:{lost_item.id}'].key}" in lines
    assert len(dm_messages(rig, BOB)) == 1 and len(dm_messages(rig, CAROL)) == 1


async def test_two_sweepers_at_once_send_each_nudge_once(rig: Rig) -> None:
    if not rig.url.startswith("postgresql"):
        pytest.skip("concurrent sweepers are a PostgreSQL (SKIP LOCKED) deployment")
    await rig.start_incident()
    # Two owners whose working hours overlap (New York and Paris, in the afternoon UTC), so
    # one instant finds every nudge due and sendable.
    for n in range(12):
        await item_with_owner(rig, owner=(BOB, ALICE)[n % 2], title=f"Add alert number {n} at 800 ms")
    at = max(n.not_before for n in await nudges(rig, status="pending")) + timedelta(minutes=1)
    assert in_working_hours(at, PARIS) and in_working_hours(at, ZoneInfo("America/New_York")), at
    first, second = await asyncio.gather(sweep_at(rig, at), sweep_at(rig, at))
    sent = [line for line in first + second if line.startswith("sent action_item/")]
    assert len(sent) == 12 and len(set(sent)) == 12
    keys = [m["metadata"]["event_payload"]["key"] for u in (BOB, ALICE) for m in dm_messages(rig, u)]
    assert len(keys) == 12 and len(set(keys)) == 12


async def test_meeting_nudges_until_scheduled_then_agenda_and_publication(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 1")
    view = await rig.open_postmortem(INCIDENT_CHANNEL, ALICE)
    await rig.driver.close_view(view, ALICE)
    row = await pending(rig, "meeting_unscheduled")
    assert row.recipient == ALICE
    lines = await sweep_at(rig, row.not_before)
    assert any(line.startswith("sent meeting_unscheduled/") for line in lines)
    assert "meeting_schedule" in json.dumps(dm_messages(rig, ALICE)[-1]["blocks"])

    meeting_day = (rig.today() + timedelta(days=3)).isoformat()
    before = len(rig.emulator.responses())
    await rig.driver.slash_command(
        INCIDENT_CHANNEL, ALICE, f"meeting {meeting_day} 15:00 <@{BOB}|bob> <@{CAROL}|carol>"
    )
    answer = (await rig.responses(before + 1))[-1]
    assert "Review meeting set" in answer["text"]
    invite = [f for f in rig.emulator.uploaded_files() if f["filename"].endswith(".ics")]
    assert invite and b"BEGIN:VEVENT" in invite[0]["content"]
    assert await nudges(rig, status="pending", kind="meeting_unscheduled") == [], "no more nudges once scheduled"

    agenda = await pending(rig, "meeting_agenda")
    lines = await sweep_at(rig, agenda.not_before)
    assert any(line.startswith("sent meeting_agenda/") for line in lines), lines
    publication = await pending(rig, "publication_request")
    lines = await sweep_at(rig, publication.not_before)
    assert any(line.startswith("sent publication_request/") for line in lines)
    review = await pending(rig, "review_30d")
    lines = await sweep_at(rig, review.not_before)
    assert any(line.startswith("sent review_30d/") for line in lines)


async def test_the_cards_schedule_button_sets_the_meeting_and_the_card_shows_it(rig: Rig) -> None:
    card = await rig.start_incident("Checkout failing --sev 2")
    view = await rig.open_postmortem(INCIDENT_CHANNEL, ALICE)
    await rig.driver.close_view(view, ALICE)

    async def card_offers_meeting() -> dict | None:
        current = rig.emulator.message(INCIDENT_CHANNEL, card["ts"])
        return current if "meeting_schedule" in json.dumps(current["blocks"]) else None

    current = await rig.eventually(card_offers_meeting)
    assert "due by" in json.dumps(current["blocks"]), "the card shows the deadline severity sets"
    await rig.driver.click_message_button(INCIDENT_CHANNEL, card["ts"], ALICE, "meeting_schedule")
    form = await rig.latest_view("meeting_modal")
    assert "Checkout failing" in json.dumps(form["blocks"])
    day = (rig.today() + timedelta(days=2)).isoformat()
    assert (
        await rig.driver.submit_view(
            form, ALICE, {"meeting_date": day, "meeting_time": "15:30", "meeting_attendees": [BOB]}
        )
    ).status == 200

    async def scheduled() -> bool:
        current = rig.emulator.message(INCIDENT_CHANNEL, card["ts"])
        return "meeting_schedule" not in json.dumps(current["blocks"]) and "Review meeting" in json.dumps(
            current["blocks"]
        )

    await rig.eventually(scheduled)
    assert await pending(rig, "meeting_agenda")


async def test_slack_faults_during_a_sweep_delay_nudges_but_never_double_or_drop_them(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig)
    row = await pending(rig)
    rig.emulator.fail("chat.postMessage", status=429, retry_after=1)
    assert await sweep_at(rig, row.not_before) == [f"sent {row.key}"], "a 429 is waited out (Retry-After) and sent once"
    assert len(dm_messages(rig, BOB)) == 1

    nxt = await pending(rig)
    rig.emulator.fail("chat.postMessage", status=500, times=20)  # past the client's own retries
    lines = await sweep_at(rig, nxt.not_before)
    assert lines == [f"retry later {nxt.key} (http_500)"], lines
    async with rig.bot.services.timeline.sessions() as session:
        released = await session.get(Nudge, nxt.id)
    assert released.status == "pending" and released.not_before > nxt.not_before
    rig.emulator.clear_faults("chat.postMessage")  # Slack recovers
    assert await sweep_at(rig, released.not_before) == [f"sent {nxt.key}"]
    assert len(dm_messages(rig, BOB)) == 2
    assert (await item_state(rig, item.id)).status == "open"


async def test_snooze_with_a_reason_and_not_mine_hands_over_with_a_fresh_assignment(rig: Rig) -> None:
    await rig.start_incident()
    item = await item_with_owner(rig)
    await sweep_at(rig, (await pending(rig)).not_before)
    dm = dm_messages(rig, BOB)[-1]
    await rig.driver.choose_in_message(rig.emulator.open_dm(BOB), dm["ts"], BOB, "item_snooze", f"{item.id}:1d")
    form = await rig.latest_view("item_snooze_modal")
    await rig.driver.submit_view(form, BOB, {"item_snooze_reason": "Waiting for the vendor fix"})

    async def snoozed() -> bool:
        state = await item_state(rig, item.id)
        return state.snoozed_until is not None and state.status_note == "Waiting for the vendor fix"

    await rig.eventually(snoozed)

    await press(rig, BOB, BOB, "item_not_mine")
    form = await rig.latest_view("item_not_mine_modal")
    await rig.driver.submit_view(form, BOB, {"item_new_owner": CAROL, "item_not_mine_note": "Carol owns the alerting"})

    async def handed_over() -> bool:
        return (await item_state(rig, item.id)).owner_id == CAROL

    await rig.eventually(handed_over)

    async def commander_told() -> bool:
        return any("Add a p99 alert" in json.dumps(m) for m in dm_messages(rig, ALICE))

    await rig.eventually(commander_told)
    row = await pending(rig)
    assert (row.slot, row.recipient) == ("assigned", CAROL), "the new owner gets the assignment DM"
    assert await sweep_at(rig, row.not_before) == [f"sent {row.key}"]
    assert len(dm_messages(rig, CAROL)) == 1


async def test_a_dm_that_times_out_but_lands_is_recovered_not_sent_again(rig: Rig) -> None:
    """A timed-out chat.postMessage may still have posted: the nudge stays claimed, and after
    the lease the sweep finds its key in Slack instead of sending it again."""
    from bot.nudges import CLAIM_LEASE

    await rig.start_incident()
    await item_with_owner(rig)
    row = await pending(rig)
    # Due now on the clock the bot and Slack share: recovery looks for the DM near the claim.
    now = rig.clock.now()
    async with rig.bot.services.timeline.sessions.begin() as session:
        (await session.get(Nudge, row.id)).not_before = now
    service = rig.bot.services.nudges
    usual_timeout = service.client.timeout
    service.client.timeout = 0.3
    rig.emulator.delay("chat.postMessage", 1.0)  # Slack answers too late, but posts
    try:
        report = await service.sweep(now)
    finally:
        service.client.timeout = usual_timeout
    assert report.sent == [] and report.retried == [f"{row.key} (timeout, checked after the lease)"]

    async def landed() -> bool:
        return len(dm_messages(rig, BOB)) == 1

    await rig.eventually(landed)
    assert (await service.sweep(now + timedelta(minutes=1))).sent == [], "not again within the lease"
    lines = await sweep_at(rig, now + CLAIM_LEASE + timedelta(minutes=1))
    assert lines == [f"recovered {row.key} (already in Slack)"]
    assert len(dm_messages(rig, BOB)) == 1
