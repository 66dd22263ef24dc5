"""Follow-through messages and modals (bot/ui/item_messages.py, bot/ui/meeting.py) and the meeting invite (bot/ics.py),
checked by rendering them with realistic and hostile input against Slack's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest

from bot import ics
from bot.ui import item_messages as ui
from bot.ui import meeting as meeting_ui
from bot.ui.card import CONTINUE_POSTMORTEM, SCHEDULE_MEETING
from bot.ui.text import (
    MAX_BLOCKS_TEXT,
    MAX_BUTTON_TEXT,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_MESSAGE_BLOCKS,
    MAX_MODAL_BLOCKS,
    MAX_MODAL_TITLE,
    MAX_SECTION_TEXT,
    slack_date,
)
from bot.views import ActionItemView, IncidentView

TODAY = date(2026, 12, 7)
AT = datetime(2026, 12, 9, 14, 30, tzinfo=UTC)
BOB, ALICE, CAROL = "UBOB000001", "UALICE0001", "UCAROL0001"
PINGS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam")
HOSTILE = "<!channel> & <!here> <@U999> *bold* `code` <https://evil.example|click> " + "x" * 3000


def item(**changes: Any) -> ActionItemView:
    base = {
        "id": 42,
        "title": "Add a p99 latency alert on checkout",
        "owner_id": BOB,
        "due": date(2026, 12, 10),
        "priority": "P1",
        "type": "prevent",
        "status": "open",
        "ticket_url": "https://jira.example.com/browse/OPS-12?x=1&y=2",
        "incident_title": "Checkout failing",
        "incident_channel": "CINCIDENT1",
        "commander_id": ALICE,
    }
    base.update(changes)
    return ActionItemView(**base)


def hostile_item(**changes: Any) -> ActionItemView:
    return item(
        title=HOSTILE,
        incident_title=HOSTILE,
        ticket_url="javascript:alert(1)",
        status_note=HOSTILE + "\nsecond line",
        **changes,
    )


def incident(**changes: Any) -> IncidentView:
    base = {
        "id": 7,
        "team_id": "T1",
        "title": "Checkout failing",
        "channel_id": "CINCIDENT1",
        "severity": 1,
        "status": "resolved",
        "started_at": datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        "resolved_at": datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        "deadline": datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
        "commander_id": ALICE,
    }
    base.update(changes)
    return IncidentView(**base)


# --- walking rendered payloads ----------------------------------------------------------------


def walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def text_size(node: Any) -> int:
    return sum(len(d["text"]) for d in walk(node) if isinstance(d.get("text"), str))


def mrkdwn_texts(payload: dict) -> list[str]:
    return [d["text"] for d in walk(payload) if d.get("type") == "mrkdwn"]


def assert_no_pings(payload: dict) -> None:
    dumped = json.dumps(payload)
    for ping in PINGS:
        assert ping not in dumped
    # Every <…> token in mrkdwn is one of ours: a user, a channel, a date, or a checked link.
    for text in mrkdwn_texts(payload) + [payload.get("text", "")]:
        for token in re.findall(r"<([^>]*)>", text):
            assert re.match(r"(@[UW][A-Z0-9]+|#[CGD][A-Z0-9]+|!date\^\d+\^|https?://)", token), token


def assert_element_limits(payload: dict) -> None:
    for d in walk(payload):
        if d.get("type") == "button":
            assert len(d["text"]["text"]) <= MAX_BUTTON_TEXT
            assert len(d.get("value", "")) <= 2000
        if d.get("type") == "static_select":
            assert len(d["options"]) <= 100
            assert all(len(o["text"]["text"]) <= 75 for o in d["options"])
        if d.get("type") == "section":
            if "text" in d:
                assert len(d["text"]["text"]) <= MAX_SECTION_TEXT
            assert len(d.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in d.get("fields", []))
        if d.get("type") == "header":
            assert len(d["text"]["text"]) <= MAX_HEADER_TEXT
        if d.get("type") == "context":
            assert len(d["elements"]) <= 10
            assert all(len(e["text"]) <= MAX_SECTION_TEXT for e in d["elements"])
        if isinstance(d.get("placeholder"), dict):
            assert len(d["placeholder"]["text"]) <= 150


def assert_message(payload: dict) -> None:
    assert set(payload) == {"text", "blocks"}
    assert payload["text"] and len(payload["text"]) <= MAX_FALLBACK_TEXT
    assert 1 <= len(payload["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert text_size(payload["blocks"]) <= 12_000  # msg_blocks_too_long starts around 12-13k
    assert_element_limits(payload)
    assert_no_pings(payload)


def assert_modal(view: dict) -> None:
    assert view["type"] == "modal"
    for key in ("title", "submit", "close"):
        assert 1 <= len(view[key]["text"]) <= MAX_MODAL_TITLE
    assert 1 <= len(view["blocks"]) <= MAX_MODAL_BLOCKS
    assert len(view["private_metadata"]) <= 3000
    for block in view["blocks"]:
        if block["type"] == "input":
            assert len(block["label"]["text"]) <= 2000
            assert block["block_id"] and block["element"]["action_id"]
    assert_element_limits(view)
    assert_no_pings(view)


def actions_of(payload: dict) -> list[dict]:
    return [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]


# --- the owner's DM -------------------------------------------------------------------------------

REASONS = ["assigned", "before", "due", "overdue-1", "overdue-12", "something-new", ""]
STATUSES = ["open", "in_progress", "done", "wont_do"]


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("make", [item, hostile_item])
def test_every_dm_renders_within_limits(make, status, reason):
    assert_message(ui.action_item_dm(make(status=status), reason=reason, today=TODAY))


@pytest.mark.parametrize(
    ("reason", "due", "headline"),
    [
        ("assigned", date(2026, 12, 10), "You own a new action item"),
        ("before", date(2026, 12, 10), "Due in 3 days"),
        ("before", date(2026, 12, 8), "Due tomorrow"),
        ("due", TODAY, "Due today"),
        ("overdue-1", date(2026, 12, 6), "Overdue by 1 day"),
        ("overdue-5", date(2026, 12, 2), "Overdue by 5 days"),
    ],
)
def test_headline_says_why_the_dm_comes_now(reason, due, headline):
    message = ui.action_item_dm(item(due=due), reason=reason, today=TODAY)
    assert message["text"].startswith(f"{headline}: Add a p99")
    assert f"*{headline}*" in message["blocks"][0]["text"]["text"]


def test_dm_shows_the_facts_and_the_ticket_link():
    message = ui.action_item_dm(item(), reason="before", today=TODAY)
    texts = "\n".join(mrkdwn_texts(message))
    assert "*Add a p99 latency alert on checkout*" in texts
    assert "Checkout failing in <#CINCIDENT1>" in texts
    assert "2026-12-10 (Thu), in 3 days" in texts
    assert "P1 (urgent)" in texts and "Open" in texts
    assert "<https://jira.example.com/browse/OPS-12?x=1&amp;y=2|Open ticket>" in texts


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("javascript:alert(1)", None),
        ("ftp://x.example/a", None),
        ("https://", None),
        ("not a url", None),
        ("https://a.example/x y", None),
        (None, None),
        (12, None),
        ("https://" + "a" * 2000 + ".example", None),
        ("HTTP://t.example/OPS-1", "<http://t.example/OPS-1|Open ticket>"),
        ("https://a.example/|<!channel>", "<https://a.example/%7C%3C!channel%3E|Open ticket>"),
    ],
)
def test_only_http_ticket_links_are_linked(url, link):
    message = ui.action_item_dm(item(ticket_url=url), reason="due", today=TODAY)
    assert_no_pings(message)
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    tickets = [f for f in fields if f.startswith("*Ticket*")]
    assert tickets == ([f"*Ticket*\n{link}"] if link else [])


def test_dm_buttons_and_their_values():
    message = ui.action_item_dm(item(), reason="due", today=TODAY)
    elements = actions_of(message)
    assert [e["action_id"] for e in elements] == [
        ui.ITEM_DONE,
        ui.ITEM_IN_PROGRESS,
        ui.ITEM_SNOOZE,
        ui.ITEM_CHANGE_DUE,
        ui.ITEM_NOT_MINE,
        ui.ITEM_WONT_DO,
    ]
    for element in elements:
        if element["type"] == "button":
            assert ui.parse_item_value(element["value"]) == 42
        else:
            assert [o["text"]["text"] for o in element["options"]] == ["1 day", "1 week"]
            assert [ui.parse_snooze_value(o["value"]) for o in element["options"]] == [(42, "1d"), (42, "1w")]
    assert message["blocks"][-1]["block_id"] == ui.ITEM_ACTIONS_BLOCK


def test_in_progress_button_is_hidden_when_already_in_progress():
    ids = [
        e["action_id"] for e in actions_of(ui.action_item_dm(item(status="in_progress"), reason="before", today=TODAY))
    ]
    assert ui.ITEM_IN_PROGRESS not in ids and ui.ITEM_DONE in ids


def test_closed_items_render_their_final_state_without_buttons():
    done = ui.action_item_dm(item(status="done"), reason="due", today=TODAY)
    assert not actions_of(done)
    assert "Done — thanks!" in done["blocks"][0]["text"]["text"]
    wont = ui.action_item_dm(
        item(status="wont_do", status_note="Service retired <!channel>"), reason="due", today=TODAY
    )
    assert not actions_of(wont)
    assert "*Won't do:* Service retired &lt;!channel&gt;" in wont["blocks"][0]["text"]["text"]
    assert wont["text"] == "Won't do: Add a p99 latency alert on checkout (Service retired &lt;!channel&gt;)"
    assert done["text"] == "Done — thanks! Add a p99 latency alert on checkout"


# --- answers: the DM updated in place, and the channel's thread ----------------------------------

WHATS = [
    ui.WHAT_DONE,
    ui.WHAT_IN_PROGRESS,
    ui.WHAT_SNOOZE,
    ui.WHAT_SNOOZE_DAY,
    ui.WHAT_SNOOZE_WEEK,
    ui.WHAT_CHANGE_DUE,
    ui.WHAT_NOT_MINE,
    ui.WHAT_WONT_DO,
] + ["marked it done", "says it isn't theirs and handed it to <@UCAROL0001> <!channel>", "", HOSTILE]


@pytest.mark.parametrize("what", WHATS)
@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("make", [item, hostile_item])
def test_answers_render_within_limits(make, status, what):
    assert_message(ui.action_item_answered(make(status=status), by=BOB, what=what))
    assert_message(ui.channel_update(make(status=status), by=BOB, what=what))


def test_answered_dm_says_who_did_what_and_keeps_buttons_while_open():
    message = ui.action_item_answered(item(status="in_progress"), by=BOB, what=ui.WHAT_IN_PROGRESS)
    assert f"Marked in progress by <@{BOB}>" in message["blocks"][2]["elements"][0]["text"]
    assert ui.ITEM_DONE in [e["action_id"] for e in actions_of(message)]
    done = ui.action_item_answered(item(status="done"), by=BOB, what=ui.WHAT_DONE)
    assert not actions_of(done) and f"Marked done by <@{BOB}>" in json.dumps(done)


def test_answered_dm_keeps_service_mentions_but_not_pings():
    message = ui.action_item_answered(item(), by=BOB, what="handed it to <@UCAROL0001> <!channel>")
    dumped = json.dumps(message)
    assert "<@UCAROL0001>" in dumped and "&lt;!channel&gt;" in dumped


@pytest.mark.parametrize(
    ("what", "changes", "expected"),
    [
        (
            ui.WHAT_DONE,
            {"status": "done"},
            f":white_check_mark: <@{BOB}> marked *Add a p99 latency alert on checkout* done",
        ),
        (ui.WHAT_CHANGE_DUE, {}, "moved the due date of *Add a p99 latency alert on checkout* to 2026-12-10"),
        (ui.WHAT_SNOOZE_WEEK, {}, ":zzz: <@UBOB000001> snoozed *Add a p99 latency alert on checkout* for a week"),
        (
            ui.WHAT_WONT_DO,
            {"status": "wont_do", "status_note": "Retired & gone"},
            "won't do *Add a p99 latency alert on checkout*: Retired &amp; gone",
        ),
        (ui.WHAT_NOT_MINE, {}, f"isn't theirs; <@{ALICE}>, please reassign it"),
        (ui.WHAT_NOT_MINE, {"owner_id": CAROL}, f"handed *Add a p99 latency alert on checkout* to <@{CAROL}>"),
    ],
)
def test_channel_update_wording(what, changes, expected):
    assert expected in ui.channel_update(item(**changes), by=BOB, what=what)["text"]


def test_channel_update_cuts_long_titles():
    text = ui.channel_update(item(title="Add a p99 alert " + "z" * 500), by=BOB, what=ui.WHAT_DONE)["text"]
    assert "…*" in text and len(text) < 200


def test_hostile_ids_never_become_mentions():
    bad = item(owner_id="<!channel>", commander_id="U1|x>", incident_channel="<!here>")
    for message in (
        ui.action_item_dm(bad, reason="due", today=TODAY),
        ui.channel_update(bad, by="<!everyone>", what=ui.WHAT_NOT_MINE),
        ui.overdue_to_channel(bad, overdue_days=3),
        ui.overdue_to_commander(bad, overdue_days=3),
    ):
        assert_message(message)


# --- item modals and reading them back --------------------------------------------------------------


@pytest.mark.parametrize("make", [item, hostile_item])
def test_item_modals_within_limits(make):
    change = ui.change_due_modal(make(), today=TODAY)
    not_mine = ui.not_mine_modal(make())
    wont = ui.wont_do_modal(make())
    for view, callback in (
        (change, ui.CHANGE_DUE_CALLBACK),
        (not_mine, ui.NOT_MINE_CALLBACK),
        (wont, ui.WONT_DO_CALLBACK),
    ):
        assert_modal(view)
        assert view["callback_id"] == callback
        assert ui.read_item_id(view["private_metadata"]) == 42
        assert json.loads(view["private_metadata"]) == {"item_id": 42}


def test_change_due_modal_starts_at_the_current_due_date_and_is_required():
    view = ui.change_due_modal(item(), today=TODAY)
    (block,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert block["block_id"] == ui.CHANGE_DUE_BLOCK and not block.get("optional")
    assert block["element"] == {
        **block["element"],
        "type": "datepicker",
        "action_id": ui.CHANGE_DUE_ACTION,
        "initial_date": "2026-12-10",
    }
    # The listener passes the due date as `today`; that must render too.
    assert_modal(ui.change_due_modal(item(), today=item().due))


def test_modal_inputs_are_required_or_optional_as_asked():
    optional = {
        b["block_id"]: b.get("optional", False) for b in ui.not_mine_modal(item())["blocks"] if b["type"] == "input"
    }
    assert optional == {ui.NOT_MINE_OWNER_BLOCK: True, ui.NOT_MINE_NOTE_BLOCK: True}
    (reason,) = [b for b in ui.wont_do_modal(item())["blocks"] if b["type"] == "input"]
    assert reason["block_id"] == ui.WONT_DO_BLOCK and not reason.get("optional") and reason["element"]["multiline"]


def state(block: str, action: str, element: dict) -> dict:
    return {block: {action: element}}


def test_read_helpers_round_trip():
    assert ui.read_change_due(
        state(ui.CHANGE_DUE_BLOCK, ui.CHANGE_DUE_ACTION, {"type": "datepicker", "selected_date": "2027-01-15"})
    ) == date(2027, 1, 15)
    values = {
        **state(ui.NOT_MINE_OWNER_BLOCK, ui.NOT_MINE_OWNER_ACTION, {"type": "users_select", "selected_user": CAROL}),
        **state(
            ui.NOT_MINE_NOTE_BLOCK,
            ui.NOT_MINE_NOTE_ACTION,
            {"type": "plain_text_input", "value": "  Payments owns it  "},
        ),
    }
    assert ui.read_not_mine(values) == (CAROL, "Payments owns it")
    assert ui.read_not_mine(state(ui.NOT_MINE_NOTE_BLOCK, ui.NOT_MINE_NOTE_ACTION, {"value": None})) == (None, "")
    assert (
        ui.read_wont_do(
            state(ui.WONT_DO_BLOCK, ui.WONT_DO_ACTION, {"type": "plain_text_input", "value": "Retired.\nFor good."})
        )
        == "Retired.\nFor good."
    )
    meeting = {
        **state(
            meeting_ui.MEETING_DATE_BLOCK,
            meeting_ui.MEETING_DATE_ACTION,
            {"type": "datepicker", "selected_date": "2026-12-09"},
        ),
        **state(
            meeting_ui.MEETING_TIME_BLOCK,
            meeting_ui.MEETING_TIME_ACTION,
            {"type": "timepicker", "selected_time": "09:30"},
        ),
        **state(
            meeting_ui.MEETING_ATTENDEES_BLOCK,
            meeting_ui.MEETING_ATTENDEES_ACTION,
            {"type": "multi_users_select", "selected_users": [BOB, ALICE, BOB, "<!channel>"]},
        ),
        **state(
            meeting_ui.MEETING_LOCATION_BLOCK,
            meeting_ui.MEETING_LOCATION_ACTION,
            {"type": "plain_text_input", "value": "https://meet.example/abc"},
        ),
    }
    assert meeting_ui.read_meeting(meeting) == (
        date(2026, 12, 9),
        time(9, 30),
        [BOB, ALICE],
        "https://meet.example/abc",
    )


def test_read_helpers_find_inputs_in_the_modals_they_read():
    """The block and action ids the readers look for are the ones the modals render."""

    def ids(view: dict) -> set[tuple[str, str]]:
        return {(b["block_id"], b["element"]["action_id"]) for b in view["blocks"] if b["type"] == "input"}

    assert ids(ui.change_due_modal(item(), today=TODAY)) == {(ui.CHANGE_DUE_BLOCK, ui.CHANGE_DUE_ACTION)}
    assert ids(ui.not_mine_modal(item())) == {
        (ui.NOT_MINE_OWNER_BLOCK, ui.NOT_MINE_OWNER_ACTION),
        (ui.NOT_MINE_NOTE_BLOCK, ui.NOT_MINE_NOTE_ACTION),
    }
    assert ids(ui.wont_do_modal(item())) == {(ui.WONT_DO_BLOCK, ui.WONT_DO_ACTION)}
    assert ids(meeting_ui.meeting_modal(incident(), initial_attendees=[])) == {
        (meeting_ui.MEETING_DATE_BLOCK, meeting_ui.MEETING_DATE_ACTION),
        (meeting_ui.MEETING_TIME_BLOCK, meeting_ui.MEETING_TIME_ACTION),
        (meeting_ui.MEETING_ATTENDEES_BLOCK, meeting_ui.MEETING_ATTENDEES_ACTION),
        (meeting_ui.MEETING_LOCATION_BLOCK, meeting_ui.MEETING_LOCATION_ACTION),
    }


GARBAGE = [
    None,
    [],
    "x",
    3,
    {"a": 1},
    {ui.CHANGE_DUE_BLOCK: None},
    {ui.CHANGE_DUE_BLOCK: {"due": None}},
    {ui.CHANGE_DUE_BLOCK: {"due": {"selected_date": "2026-13-45"}}},
    {ui.CHANGE_DUE_BLOCK: {"due": {"selected_date": 20261210}}},
    {ui.NOT_MINE_OWNER_BLOCK: {"owner": {"selected_user": ["U1"]}}},
    {ui.NOT_MINE_NOTE_BLOCK: {"note": {"value": 5}}},
    {ui.WONT_DO_BLOCK: {"reason": {"value": {"x": 1}}}},
    {ui.WONT_DO_BLOCK: []},
    {meeting_ui.MEETING_TIME_BLOCK: {"time": {"selected_time": "25:99"}}},
    {meeting_ui.MEETING_TIME_BLOCK: {"time": {"selected_time": None}}},
    {meeting_ui.MEETING_ATTENDEES_BLOCK: {"attendees": {"selected_users": "UBOB000001"}}},
    {meeting_ui.MEETING_ATTENDEES_BLOCK: {"attendees": {"selected_users": [None, 3, {"x": 1}]}}},
    {meeting_ui.MEETING_DATE_BLOCK: {"date": {"selected_date": "2026-12-09T10:00"}}},
]


@pytest.mark.parametrize("values", GARBAGE)
def test_read_helpers_survive_garbage(values):
    assert ui.read_change_due(values) is None
    assert ui.read_not_mine(values) == (None, "")
    assert ui.read_wont_do(values) == ""
    assert meeting_ui.read_meeting(values) == (None, None, [], "")


@pytest.mark.parametrize("value", [None, "", "x", "-1", "1.5", "12:1y", ":1d", "12:", "<!channel>", "9" * 40, 12])
def test_value_parsers_survive_garbage(value):
    assert ui.parse_snooze_value(value) is None
    assert ui.parse_item_value(value) is None
    assert ui.read_item_id(value) is None and meeting_ui.read_incident_id(value) is None


@pytest.mark.parametrize(
    "metadata", ["", "{", "[]", '{"item_id": "3"}', '{"item_id": true}', '{"item_id": -1}', '{"other": 3}', "x" * 4000]
)
def test_metadata_readers_survive_garbage(metadata):
    assert ui.read_item_id(metadata) is None


def test_error_helpers():
    assert ui.change_due_errors(None, today=TODAY) == {ui.CHANGE_DUE_BLOCK: "Pick a date."}
    assert ui.change_due_errors(date(2026, 12, 1), today=TODAY)
    assert ui.change_due_errors(TODAY, today=TODAY) == {}


# --- escalations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [item, hostile_item])
@pytest.mark.parametrize("days", [0, 1, 3, 400])
def test_escalations_within_limits(make, days):
    to_commander = ui.overdue_to_commander(make(), overdue_days=days)
    to_channel = ui.overdue_to_channel(make(), overdue_days=days)
    for message in (to_commander, to_channel):
        assert_message(message)
        assert not actions_of(message)


def test_escalations_say_who_what_and_how_late():
    to_commander = json.dumps(ui.overdue_to_commander(item(), overdue_days=3))
    assert (
        "3 days overdue" in to_commander and f"<@{BOB}>" in to_commander and "Add a p99 latency alert" in to_commander
    )
    to_channel = ui.overdue_to_channel(item(), overdue_days=1)["text"]
    assert "is 1 day overdue" in to_channel and f"owner <@{BOB}>" in to_channel and "P1" in to_channel


@pytest.mark.parametrize("error", ["user_disabled", "cannot_dm_bot", "ratelimited", "<!channel>", ""])
@pytest.mark.parametrize("make", [item, hostile_item])
def test_undeliverable_tells_the_commander_why(make, error):
    message = ui.undeliverable(make(), error=error)
    assert_message(message)
    if error == "user_disabled":
        assert "their Slack account is deactivated" in message["text"]


# --- the review meeting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [incident, lambda: incident(title=HOSTILE, channel_id="<!channel>", severity="x", deadline=None, resolved_at=None)],
)
def test_meeting_messages_within_limits(make):
    unscheduled = meeting_ui.meeting_unscheduled(make())
    assert_message(unscheduled)
    (button,) = actions_of(unscheduled)
    assert button["action_id"] == SCHEDULE_MEETING and ui.parse_item_value(button["value"]) == 7
    assert_message(
        meeting_ui.meeting_scheduled(
            make(),
            at=AT,
            attendees=[BOB, ALICE, "<!here>"] + [f"U{i:08d}" for i in range(200)],
            by=ALICE,
            location=HOSTILE,
        )
    )
    assert_message(meeting_ui.publication_request(make(), deadline=AT + timedelta(hours=48)))
    assert_message(meeting_ui.meeting_agenda(make(), at=AT, timeline_lines=[], action_items=[]))
    assert_message(meeting_ui.review_30_days(make(), items=[], today=TODAY))


def test_meeting_unscheduled_names_the_deadline_and_the_button():
    message = meeting_ui.meeting_unscheduled(incident())
    section = message["blocks"][0]["text"]["text"]
    assert "Checkout failing" in section and "(SEV1)" in section and slack_date(incident().deadline) in section
    assert "*Schedule meeting*" in json.dumps(message)


@pytest.mark.parametrize(
    "make", [incident, lambda: incident(title=HOSTILE), lambda: incident(title="", channel_id="", deadline=None)]
)
def test_meeting_modal(make):
    view = meeting_ui.meeting_modal(make(), initial_attendees=[BOB, "<!channel>", ALICE, BOB], timezone="Europe/Paris")
    assert_modal(view)
    assert view["callback_id"] == meeting_ui.MEETING_CALLBACK
    assert (
        json.loads(view["private_metadata"]) == {"incident_id": 7}
        and meeting_ui.read_incident_id(view["private_metadata"]) == 7
    )
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs[meeting_ui.MEETING_DATE_BLOCK]["element"]["type"] == "datepicker"
    assert inputs[meeting_ui.MEETING_TIME_BLOCK]["element"]["type"] == "timepicker"
    assert inputs[meeting_ui.MEETING_ATTENDEES_BLOCK]["element"]["initial_users"] == [BOB, ALICE]
    assert inputs[meeting_ui.MEETING_LOCATION_BLOCK]["optional"] is True


def test_meeting_scheduled_uses_reader_time_zones():
    message = meeting_ui.meeting_scheduled(
        incident(), at=AT, attendees=[BOB, ALICE], by=ALICE, location="Room 4 & video"
    )
    section = message["blocks"][0]["text"]["text"]
    assert "<!date^" in section and f"<@{BOB}>, <@{ALICE}>" in section and "Room 4 &amp; video" in section
    assert "2026-12-09 14:30 UTC" in message["text"]


def timeline_line(i: int, length: int = 600) -> str:
    at = datetime(2026, 11, 23, 14, 0, tzinfo=UTC) + timedelta(minutes=i)
    return f":speech_balloon: {slack_date(at, '{date_short} {time}')} <@UBOB000001>: entry {i} " + "y" * length


@pytest.mark.parametrize("length", [40, 600, 5000])
def test_agenda_with_5000_timeline_lines_fits_and_counts_the_rest(length):
    lines = [timeline_line(i, length) for i in range(5000)]
    actions = [item(id=i, title=f"Item {i} " + "t" * 300, owner_id=BOB) for i in range(60)]
    message = meeting_ui.meeting_agenda(incident(), at=AT, timeline_lines=lines, action_items=actions)
    assert_message(message)
    assert text_size(message["blocks"]) <= MAX_BLOCKS_TEXT
    shown = sum(t.count(":speech_balloon:") for t in mrkdwn_texts(message))
    assert 0 < shown < 5000
    note = message["blocks"][-1]["elements"][0]["text"]
    assert f"{5000 - shown} later entries are not shown here" in note
    # Lines are kept in order: the first ones are shown.
    assert "entry 0 " in json.dumps(message)


def test_agenda_lists_the_agenda_and_asks_for_gaps():
    message = meeting_ui.meeting_agenda(
        incident(),
        at=AT,
        timeline_lines=[timeline_line(0), timeline_line(1)],
        action_items=[item(), item(id=43, title="Runbook", owner_id=CAROL)],
    )
    texts = "\n".join(mrkdwn_texts(message))
    for part in ("Timeline review", "five times", "What could be better", "What went well", "Action items"):
        assert part in texts
    assert f"Add a p99 latency alert on checkout — <@{BOB}>, due 2026-12-10 (Thu)" in texts
    assert f"<@{CAROL}>" in texts and "Missing or wrong?" in texts and "2 entries" in texts
    assert "not shown" not in texts


def test_agenda_cuts_a_huge_line_without_leaving_half_a_token():
    line = "x" * 2990 + "<@UBOB000001> and more " + "z" * 100
    message = meeting_ui.meeting_agenda(incident(), at=AT, timeline_lines=[line], action_items=[])
    assert_message(message)
    assert "<@UBOB" not in json.dumps(message)


def test_publication_request_opens_the_postmortem():
    message = meeting_ui.publication_request(incident(), deadline=AT)
    (button,) = actions_of(message)
    assert button["action_id"] == CONTINUE_POSTMORTEM and button["value"] == "7"
    assert "*Publish*" in message["blocks"][0]["text"]["text"]


def test_review_30_days_counts_and_lists_with_owners():
    items = [
        item(id=1, status="done", title="Alert"),
        item(id=2, status="open", due=date(2026, 12, 1), title="Runbook", owner_id=CAROL),
        item(id=3, status="in_progress", due=date(2026, 12, 20), title="Canary"),
        item(id=4, status="wont_do", status_note="Retired", title="Old thing"),
    ]
    message = meeting_ui.review_30_days(incident(), items=items, today=TODAY)
    assert_message(message)
    assert "1 done · 1 open · 1 overdue · 1 won't do" in message["text"]
    texts = "\n".join(mrkdwn_texts(message))
    assert f"*Overdue* (1)\n• Runbook — <@{CAROL}>, due 2026-12-01 (Tue), 6 days late" in texts
    assert "*Open* (1)\n• Canary" in texts and "*Done* (1)\n• Alert" in texts and "Old thing — Retired" in texts


def test_review_30_days_with_hundreds_of_hostile_items_fits():
    items = [hostile_item(id=i, status=STATUSES[i % 4], due=TODAY - timedelta(days=i % 9 - 4)) for i in range(400)]
    message = meeting_ui.review_30_days(incident(title=HOSTILE), items=items, today=TODAY)
    assert_message(message)
    assert "more." in json.dumps(message)


def test_all_closed_review_says_so():
    message = meeting_ui.review_30_days(
        incident(), items=[item(status="done"), item(id=2, status="wont_do")], today=TODAY
    )
    assert "All 2 action items are closed" in json.dumps(message)


# --- the .ics invite -----------------------------------------------------------------------------------


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def parse_line(line: str) -> tuple[str, dict[str, str], str]:
    """NAME;PARAM="v";P2=v:value -> (NAME, params, value); colons inside quotes are skipped."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            head, value = line[:i], line[i + 1 :]
            break
    else:
        raise AssertionError(line)
    name, *params = re.findall(r'(?:[^;"]|"[^"]*")+', head)
    return name, dict(p.split("=", 1) for p in params), value


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def invite(**changes: Any) -> str:
    args: dict[str, Any] = {
        "uid": "postmortem-7-ab12@postmortem-bot",
        "title": "Post-mortem review: Checkout failing; payments, EU \\ all",
        "start": datetime(2026, 12, 9, 15, 30, tzinfo=timezone(timedelta(hours=1))),
        "duration": timedelta(hours=1),
        "attendees_emails_or_names": [
            "bob@example.com",
            "Alice Ångström, SRE",
            'Carol "CJ" 日本語',
            "bob@example.com",
            "",
        ],
        "description": "Review of the incident.\nAgenda: timeline; root cause, 5 whys.\r\nJoin: https://meet.example/abc?x=1,2 "
        + "é🙂" * 60,
        "organizer": "Alice Ångström",
        "now": datetime(2026, 12, 1, 8, 0, 5, tzinfo=UTC),
    }
    args.update(changes)
    return ics.meeting_invite(**args)


def test_ics_lines_are_crlf_and_folded_at_75_octets():
    text = invite()
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "") and "\r" not in text.replace("\r\n", "")
    physical = text.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical)
    assert any(line.startswith(" ") for line in physical)  # the description was folded
    text.encode("utf-8").decode("utf-8")  # folding never cut a character in two


def test_ics_parses_back():
    props = [parse_line(line) for line in unfold(invite())]
    names = [p[0] for p in props]
    assert names[:6] == ["BEGIN", "VERSION", "PRODID", "CALSCALE", "METHOD", "BEGIN"] and names[-2:] == ["END", "END"]
    one = {name: (params, value) for name, params, value in props if name not in ("BEGIN", "END", "ATTENDEE")}
    assert one["PRODID"][1] == "-//postmortem-bot//EN" and one["METHOD"][1] == "REQUEST" and one["VERSION"][1] == "2.0"
    assert one["DTSTART"][1] == "20261209T143000Z" and one["DTEND"][1] == "20261209T153000Z"
    assert one["DTSTAMP"][1] == "20261201T080005Z"
    assert unescape(one["UID"][1]) == "postmortem-7-ab12@postmortem-bot"
    assert unescape(one["SUMMARY"][1]) == "Post-mortem review: Checkout failing; payments, EU \\ all"
    assert one["SUMMARY"][1] == "Post-mortem review: Checkout failing\\; payments\\, EU \\\\ all"
    assert unescape(one["DESCRIPTION"][1]).startswith(
        "Review of the incident.\nAgenda: timeline; root cause, 5 whys.\nJoin: https://meet.example/abc?x=1,2 é🙂"
    )
    assert one["ORGANIZER"] == ({"CN": '"Alice Ångström"'}, ics.NO_ADDRESS)
    attendees = [(params["CN"], value) for name, params, value in props if name == "ATTENDEE"]
    assert attendees == [
        ('"bob@example.com"', "mailto:bob@example.com"),
        ('"Alice Ångström, SRE"', ics.NO_ADDRESS),
        ("\"Carol 'CJ' 日本語\"", ics.NO_ADDRESS),
    ]


def test_ics_naive_times_are_utc_and_email_organizer_is_mailto():
    props = {
        name: (params, value)
        for name, params, value in map(
            parse_line,
            unfold(
                invite(start=datetime(2026, 12, 9, 14, 0), organizer="alice@example.com", location="Room 4; floor 2")
            ),
        )
    }
    assert props["DTSTART"][1] == "20261209T140000Z"
    assert props["ORGANIZER"][1] == "mailto:alice@example.com"
    assert unescape(props["LOCATION"][1]) == "Room 4; floor 2"


def test_ics_escapes_control_characters_and_folds_long_ascii_exactly():
    text = invite(title="a" * 200 + "\x00\x07\x1b", description="")
    physical = text.split("\r\n")
    summary = [i for i, line in enumerate(physical) if line.startswith("SUMMARY:")][0]
    assert len(physical[summary].encode()) == 75 and len(physical[summary + 1].encode()) == 75
    assert "\x00" not in text and "\x1b" not in text
    assert "DESCRIPTION" not in text


def test_ics_fold_keeps_multibyte_characters_whole():
    for prefix in range(1, 6):
        line = "X" * prefix + "🙂" * 100
        folded = ics.fold(line)
        assert folded.replace("\r\n ", "") == line
        assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))


def test_ics_refuses_nonsense():
    with pytest.raises(ValueError):
        invite(uid=" ")
    with pytest.raises(ValueError):
        invite(duration=timedelta(0))
