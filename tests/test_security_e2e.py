"""Security end to end, through the real HTTP endpoint with the signed driver, on both databases:

1. requests that are not Slack's (signature, timestamp, headers, replay) get 401 and change nothing;
2. correctly signed requests from another workspace are refused, answered, and change nothing;
3. people outside a private incident channel can neither change nor read its incident
   (action-item owners still answer their own item);
4. what people type never becomes a live mention, link or broadcast in what the bot posts,
   nor HTML or a Markdown link/image in the documents.

Each test names its cases in a table, so the number of cases is the table's length.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import time as time_of_day
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from sqlalchemy import select

from bot.action_items import Answer, AnswerError
from bot.meetings import MeetingError
from bot.postmortem_content import PostmortemContent
from bot.postmortem_document import render_html
from bot.postmortems import PostmortemError
from bot.ui import postmortem_modal as modal
from slack_emulator.driver import Delivery, SlackDriver, signature
from storage.models import (
    ActionItem,
    Incident,
    Message,
    Nudge,
    Postmortem,
    PostmortemRevision,
    ProcessedEvent,
    Reaction,
    TimelineEntry,
)
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, TEST_START, Rig

FUTURE = (TEST_START.date() + timedelta(days=14)).isoformat()
OTHER_TEAM = "TOTHER0001"
MODELS = (Incident, Message, Reaction, TimelineEntry, ProcessedEvent, Postmortem, PostmortemRevision, ActionItem, Nudge)

GOOD = {
    "pm_summary": "Checkout failed for 47 minutes after a cache flag flip in deploy 4512.",
    "pm_root_cause": "A config change disabled the cache's stampede protection; the DB saturated.",
    "pm_why_1": "The DB saturated because every request missed the cache at once.",
    "pm_why_2": "The stampede protection flag was off in the new config.",
    "pm_cause_category": "configuration",
}
ITEM_TITLE = "Add a p99 latency alert on checkout at 800 ms for 5 min"


# --- helpers ----------------------------------------------------------------------------------


async def db_state(rig: Rig) -> dict[str, list]:
    """Every row of every table, as plain values: "nothing changed" means this is equal."""
    state = {}
    async with rig.bot.services.timeline.sessions() as session:
        for model in MODELS:
            columns = [c.key for c in model.__table__.columns]
            rows = (await session.execute(select(*[getattr(model, c) for c in columns]))).all()
            state[model.__tablename__] = sorted(repr(tuple(row)) for row in rows)
    return state


def slack_state(rig: Rig) -> dict[str, Any]:
    """What people can see in Slack: every message of every conversation, pins and files."""
    em = rig.emulator
    return {
        "messages": {
            cid: [(m["ts"], m.get("text"), json.dumps(m.get("blocks"), sort_keys=True)) for m in em.messages(cid)]
            for cid in em.channels
        },
        "pins": {cid: em.pins(cid) for cid in em.channels},
        "files": len(em.uploaded_files()),
    }


async def settle(rig: Rig) -> None:
    """Wait until every acknowledged request has finished its work (listeners run after the ack)."""
    await rig.settled()


class Capture(SlackDriver):
    """The driver, but it keeps the body it would have sent: to sign it otherwise, or not at all."""

    def __init__(self, rig: Rig) -> None:
        super().__init__(rig.emulator, "http://127.0.0.1:9", rig.driver.signing_secret)
        self.body: tuple[str, str] | None = None

    async def send(self, body: str, content_type: str, **_: Any) -> Delivery:
        self.body = (body, content_type)
        return Delivery(status=0, text="")


async def capture(rig: Rig, act: Callable[[SlackDriver], Awaitable[Any]]) -> tuple[str, str]:
    driver = Capture(rig)
    await act(driver)
    assert driver.body is not None
    return driver.body


def press(
    driver: SlackDriver, channel: str, ts: str, user: str, action_id: str, value: str, option: str | None = None
) -> Awaitable[Delivery]:
    """A block_actions payload for a button (or a select's option) as Slack would send it,
    whether or not the message shows that button now (a crafted or a stale click)."""
    em = driver.emulator
    action: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": "crafted",
        "value": value,
        "action_ts": f"{time.time():.6f}",
    }
    if option is not None:
        action = dict(
            action,
            type="static_select",
            selected_option={"value": option, "text": {"type": "plain_text", "text": option}},
        )
    return driver._interact(
        {
            "type": "block_actions",
            "user": driver._actor(user),
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": em.issue_trigger_id(user=user),
            "channel": {"id": channel, "name": driver._channel_name(channel)},
            "message": em.message(channel, ts) or {},
            "response_url": em.new_response_url(),
            "actions": [action],
        }
    )


def as_team(body: str, content_type: str, team: str) -> str:
    """The same request, as if it came from workspace `team`."""
    if content_type == "application/json":
        envelope = json.loads(body)
        envelope["team_id"] = team
        for authorization in envelope.get("authorizations") or []:
            authorization["team_id"] = team
        return json.dumps(envelope)
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in form:
        payload = json.loads(form["payload"])
        payload["team"] = {"id": team, "domain": "other"}
        if isinstance(payload.get("user"), dict):
            payload["user"]["team_id"] = team
        if isinstance(payload.get("view"), dict):  # a modal opened by the app in that workspace
            payload["view"].update(team_id=team, app_installed_team_id=team)
        form["payload"] = json.dumps(payload)
    else:
        form["team_id"] = team
    return urlencode(form)


async def view_of(rig: Rig, callback_id: str, act: Callable[[], Awaitable[Any]]) -> dict:
    """Open a view legitimately (`act`) and return it as the bot rendered it."""
    before = {v["id"] for v in rig.emulator.views() if v.get("callback_id") == callback_id}
    await act()

    async def opened() -> dict | None:
        fresh = [v for v in rig.emulator.views() if v.get("callback_id") == callback_id and v["id"] not in before]
        return fresh[-1] if fresh else None

    return await rig.eventually(opened)


async def incident_with_everything(
    rig: Rig, channel: str, *, owners: tuple[str, ...] = (BOB,), secret: str = "db password rotated at 14:02"
) -> dict[str, Any]:
    """An incident in `channel` with a pinned message, a note, a submitted post-mortem (in
    review, so the card offers Publish and Schedule meeting) and action items whose
    assignment DMs were sent: every button and form the bot offers exists."""
    card = await Rig.start_incident(rig, "Checkout failing --sev 1", channel)
    message, _ = await rig.driver.post_message(channel, BOB, secret)
    await rig.processed((await rig.driver.react(channel, message["ts"], ALICE)).event_id)
    await rig.driver.slash_command(channel, ALICE, "note paged the DB team")
    await rig.responses(1)
    view = await rig.open_postmortem(channel, ALICE)
    for _ in owners:
        view = await rig.add_action_row(view, ALICE)
    edits = dict(GOOD)
    for key, owner in zip(rig.row_keys(view), owners, strict=False):
        edits.update(rig.row_edits(key, f"{ITEM_TITLE} ({owner})", owner, FUTURE))
    answer = await rig.driver.submit_view(view, ALICE, edits)
    assert answer.status == 200 and answer.text in ("", "{}"), answer.text

    async def submitted() -> list[ActionItem] | None:
        async with rig.bot.services.timeline.sessions() as session:
            items = list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))
            summary_ts = await session.scalar(select(Postmortem.summary_ts))
        return items if len(items) == len(owners) and summary_ts else None

    items = await rig.eventually(submitted)
    async with rig.bot.services.timeline.sessions() as session:
        due = list(await session.scalars(select(Nudge).where(Nudge.kind == "action_item", Nudge.status == "pending")))
        incident = await session.scalar(select(Incident).where(Incident.channel_id == channel))
    for nudge in due:
        await rig.bot.services.nudges.sweep(now=nudge.not_before)
    dms = {}
    for item in items:
        async with rig.bot.services.timeline.sessions() as session:
            fresh = await session.get(ActionItem, item.id)
        assert fresh.dm_ts, "the assignment DM was sent"
        dms[item.owner_id] = (fresh.id, fresh.dm_channel, fresh.dm_ts)
    await settle(rig)
    return {
        "card_ts": card["ts"],
        "incident_id": incident.id,
        "message_ts": message["ts"],
        "view": view,
        "items": dms,
        "secret": secret,
    }


async def item_status(rig: Rig, item_id: int) -> str:
    async with rig.bot.services.timeline.sessions() as session:
        return (await session.get(ActionItem, item_id)).status


# --- 1. requests that are not Slack's ----------------------------------------------------------


def _tamper(kind: str, body: str, secret: str) -> tuple[str, dict[str, str]]:
    """`body` with headers broken the way `kind` says (the body itself as given)."""
    now = int(time.time())
    good = lambda ts: {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature(secret, str(ts), body)}  # noqa: E731
    if kind == "wrong secret":
        return body, {
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": signature("not-the-secret", str(now), body),
        }
    if kind == "stale timestamp":
        return body, good(now - 6 * 60)
    if kind == "future timestamp":
        return body, good(now + 6 * 60)
    if kind == "no signature":
        return body, {"X-Slack-Request-Timestamp": str(now)}
    if kind == "no timestamp":
        return body, {"X-Slack-Signature": signature(secret, str(now), body)}
    if kind == "no headers":
        return body, {}
    if kind == "other body replayed":
        # A real signature, captured from another request, sent with a different body.
        return body, good(now) | {
            "X-Slack-Signature": signature(secret, str(now), body + "&x=1" if "=" in body else body + " ")
        }
    if kind == "timestamp changed":
        # The signature of this body at one time, sent with another (in the allowed window).
        return body, {
            "X-Slack-Request-Timestamp": str(now - 10),
            "X-Slack-Signature": signature(secret, str(now), body),
        }
    if kind == "v1 scheme":
        return body, good(now) | {"X-Slack-Signature": "v1=" + signature(secret, str(now), body)[3:]}
    raise AssertionError(kind)


ATTACKS = [
    "wrong secret",
    "stale timestamp",
    "future timestamp",
    "no signature",
    "no timestamp",
    "no headers",
    "other body replayed",
    "timestamp changed",
    "v1 scheme",
]
# Already covered in test_capture_e2e (forged and stale events, a forged slash command).
COVERED = {("event", "wrong secret"), ("event", "stale timestamp"), ("command", "wrong secret")}


async def _surface_request(rig: Rig, surface: str, card: dict, message: dict, incident_id: int) -> tuple[str, str]:
    """A request of each surface that would change something if it were accepted."""
    if surface == "event":
        return await capture(rig, lambda d: d.post_message(INCIDENT_CHANNEL, BOB, "forged message"))
    if surface == "command":
        return await capture(rig, lambda d: d.slash_command(INCIDENT_CHANNEL, BOB, "note forged note"))
    if surface == "block_actions":
        return await capture(
            rig, lambda d: d.click_message_button(INCIDENT_CHANNEL, card["ts"], BOB, "incident_resolve")
        )
    if surface == "message_action":
        return await capture(rig, lambda d: d.message_shortcut(INCIDENT_CHANNEL, message["ts"], BOB))
    if surface == "view_submission":
        view = modal.postmortem_modal(
            PostmortemContent(title="Forged", summary="forged summary"),
            incident_id=incident_id,
            context_line="",
            revision=0,
        )
        return await capture(rig, lambda d: d.submit_view(dict(view, id="VFORGED01"), BOB))
    raise AssertionError(surface)


SURFACES = ["event", "command", "block_actions", "message_action", "view_submission"]
SIGNATURE_CASES = [(s, a) for s in SURFACES for a in ATTACKS if (s, a) not in COVERED]


async def test_unsigned_forged_stale_and_replayed_requests_get_401_and_change_nothing(rig: Rig) -> None:
    """Every surface x every way a request can fail Slack's signing: 401, nothing stored, nothing sent.
    Each request is then sent correctly signed, and does change something: the 401s were not luck."""
    card = await rig.start_incident()
    message = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "before the shortcut")
    incident_id = (await rig.bot.services.timeline.current_incident(rig.emulator.team_id, INCIDENT_CHANNEL)).id
    await settle(rig)
    assert len(SIGNATURE_CASES) == 42
    url = rig.driver.events_url
    failures = []
    async with aiohttp.ClientSession() as http:
        for surface in SURFACES:
            body, content_type = await _surface_request(rig, surface, card, message, incident_id)
            db_before, slack_before, calls_before = await db_state(rig), slack_state(rig), len(rig.emulator.calls)
            for attack in [a for s, a in SIGNATURE_CASES if s == surface]:
                sent, headers = _tamper(attack, body, rig.driver.signing_secret)
                async with http.post(
                    url, data=sent.encode(), headers={"Content-Type": content_type, **headers}
                ) as response:
                    status, text = response.status, await response.text()
                if status != 401 or "signature" not in text:
                    failures.append((surface, attack, status, text[:100]))
            await settle(rig)
            if (
                await db_state(rig) != db_before
                or slack_state(rig) != slack_before
                or len(rig.emulator.calls) != calls_before
            ):
                failures.append((surface, "changed something"))
            # The control: the same body, signed as Slack signs it, is acted on.
            accepted = await rig.driver.send(body, content_type)
            assert accepted.status == 200, (surface, accepted.text)
            await settle(rig)
            effect = await db_state(rig) != db_before or len(rig.emulator.calls) > calls_before or accepted.text
            assert effect, f"{surface}: the control had no effect"
    assert not failures, failures


# --- 2. another workspace -----------------------------------------------------------------------

REFUSED = "another Slack workspace"


async def test_a_signed_request_from_another_workspace_is_refused_answered_and_changes_nothing(rig: Rig) -> None:
    state = await incident_with_everything(rig, INCIDENT_CHANNEL, owners=(BOB,))
    card_ts, incident_id, (item_id, dm_channel, dm_ts) = state["card_ts"], state["incident_id"], state["items"][BOB]
    em = rig.emulator

    # The forms, opened legitimately by the right people (no database change).
    meeting = await view_of(
        rig,
        "meeting_modal",
        lambda: press(rig.driver, INCIDENT_CHANNEL, card_ts, ALICE, "meeting_schedule", str(incident_id)),
    )
    change_due = await view_of(
        rig, "item_change_due_modal", lambda: press(rig.driver, dm_channel, dm_ts, BOB, "item_change_due", str(item_id))
    )
    not_mine = await view_of(
        rig, "item_not_mine_modal", lambda: press(rig.driver, dm_channel, dm_ts, BOB, "item_not_mine", str(item_id))
    )
    wont_do = await view_of(
        rig, "item_wont_do_modal", lambda: press(rig.driver, dm_channel, dm_ts, BOB, "item_wont_do", str(item_id))
    )
    snooze = await view_of(
        rig,
        "item_snooze_modal",
        lambda: press(rig.driver, dm_channel, dm_ts, BOB, "item_snooze", "", option=f"{item_id}:1w"),
    )
    warnings = dict(modal.warnings_view([("Summary", "vague")], incident_id=incident_id), id="VWARN00001")
    pm_view = state["view"]
    await settle(rig)

    day = (rig.today() + timedelta(days=3)).isoformat()
    cases: list[tuple[str, str, Callable[[SlackDriver], Awaitable[Any]]]] = [
        (
            "/postmortem start",
            "command",
            lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, "start Other outage --sev 1"),
        ),
        ("/postmortem note", "command", lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, "note from elsewhere")),
        ("/postmortem timeline", "command", lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, "timeline")),
        ("/postmortem resolve", "command", lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, "resolve")),
        (
            "/postmortem action",
            "command",
            lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {FUTURE} Another item"),
        ),
        ("/postmortem publish", "command", lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, "publish")),
        ("/postmortem meeting", "command", lambda d: d.slash_command(INCIDENT_CHANNEL, ALICE, f"meeting {day} 10:00")),
        (
            "card: Resolve",
            "button",
            lambda d: press(d, INCIDENT_CHANNEL, card_ts, ALICE, "incident_resolve", str(incident_id)),
        ),
        (
            "card: Continue post-mortem",
            "button",
            lambda d: press(d, INCIDENT_CHANNEL, card_ts, ALICE, "postmortem_continue", str(incident_id)),
        ),
        (
            "card: Publish",
            "button",
            lambda d: press(d, INCIDENT_CHANNEL, card_ts, ALICE, "postmortem_publish", str(incident_id)),
        ),
        (
            "card: Schedule meeting",
            "button",
            lambda d: press(d, INCIDENT_CHANNEL, card_ts, ALICE, "meeting_schedule", str(incident_id)),
        ),
        ("modal: Add action item", "view button", lambda d: d.click_view_button(pm_view, ALICE, "pm_add_action_item")),
        ("DM: Done", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_done", str(item_id))),
        ("DM: In progress", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_in_progress", str(item_id))),
        ("DM: Snooze", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_snooze", "", option=f"{item_id}:1d")),
        ("DM: Change due date", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_change_due", str(item_id))),
        ("DM: Not mine", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_not_mine", str(item_id))),
        ("DM: Won't do", "button", lambda d: press(d, dm_channel, dm_ts, BOB, "item_wont_do", str(item_id))),
        (
            "post-mortem form submitted",
            "view",
            lambda d: d.submit_view(pm_view, ALICE, {"pm_summary": "rewritten elsewhere"}),
        ),
        (
            "post-mortem form closed",
            "closed",
            lambda d: d.close_view(pm_view, ALICE, {"pm_summary": "rewritten elsewhere"}),
        ),
        ("warnings: Submit anyway", "view", lambda d: d.submit_view(warnings, ALICE)),
        (
            "meeting form",
            "view",
            lambda d: d.submit_view(
                meeting, ALICE, {"meeting_date": day, "meeting_time": "10:00", "meeting_attendees": [BOB]}
            ),
        ),
        ("change-due form", "view", lambda d: d.submit_view(change_due, BOB, {"item_due": FUTURE})),
        ("not-mine form", "view", lambda d: d.submit_view(not_mine, BOB, {"item_new_owner": CAROL})),
        ("won't-do form", "view", lambda d: d.submit_view(wont_do, BOB, {"item_wont_do_reason": "not ours"})),
        ("snooze form", "view", lambda d: d.submit_view(snooze, BOB)),
        ("message shortcut", "button", lambda d: d.message_shortcut(INCIDENT_CHANNEL, state["message_ts"], ALICE)),
        (
            "message event",
            "event",
            lambda d: d.send_event(
                {
                    "type": "message",
                    "channel": INCIDENT_CHANNEL,
                    "user": BOB,
                    "text": "from elsewhere",
                    "ts": em.new_ts(),
                    "channel_type": "channel",
                }
            ),
        ),
        (
            "pushpin event",
            "event",
            lambda d: d.send_event(d.reaction_event("reaction_added", INCIDENT_CHANNEL, card_ts, BOB, "pushpin")),
        ),
    ]
    assert len(cases) == 29
    failures = []
    for name, kind, act in cases:
        body, content_type = await capture(rig, act)
        db_before, slack_before, views_before = await db_state(rig), slack_state(rig), len(em.views())
        answers_before = len(em.responses())
        delivery = await rig.driver.send(as_team(body, content_type, OTHER_TEAM), content_type)
        if delivery.status != 200:
            failures.append((name, "status", delivery.status))
            continue
        if kind == "command" and REFUSED not in delivery.text:
            failures.append((name, "no refusal in the reply", delivery.text[:200]))
        if kind == "view" and not (
            (delivery.json() or {}).get("response_action") == "update" and REFUSED in delivery.text
        ):
            failures.append((name, "no refusal in the form", delivery.text[:200]))
        if kind in ("button", "view button") and "response_url" in body:
            try:
                answers = await rig.responses(answers_before + 1)
            except AssertionError:
                answers = []
            if not any(REFUSED in a.get("text", "") for a in answers[answers_before:]):
                failures.append((name, "no refusal through response_url"))
        await settle(rig)
        if await db_state(rig) != db_before:
            failures.append((name, "database changed"))
        if slack_state(rig) != slack_before or len(em.views()) != views_before:
            failures.append((name, "Slack changed"))
    assert not failures, failures

    # Behind the front door, every service that takes an id from a payload scopes it by team.
    services = rig.bot.services
    db_before = await db_state(rig)
    direct: list[tuple[str, Callable[[], Awaitable[Any]], type[Exception]]] = [
        (
            "postmortems.authorized_incident",
            lambda: services.postmortems.authorized_incident(OTHER_TEAM, incident_id, ALICE),
            PostmortemError,
        ),
        (
            "postmortems.save_draft",
            lambda: services.postmortems.save_draft(OTHER_TEAM, incident_id, PostmortemContent(summary="x"), ALICE),
            PostmortemError,
        ),
        (
            "postmortems.stage_submission",
            lambda: services.postmortems.stage_submission(
                OTHER_TEAM, incident_id, PostmortemContent(summary="x"), ALICE
            ),
            PostmortemError,
        ),
        (
            "postmortems.submit",
            lambda: services.postmortems.submit(OTHER_TEAM, incident_id, ALICE, PostmortemContent(summary="x")),
            PostmortemError,
        ),
        (
            "postmortems.publish",
            lambda: services.postmortems.publish(OTHER_TEAM, INCIDENT_CHANNEL, ALICE),
            PostmortemError,
        ),
        ("action_items.item", lambda: services.action_items.item(OTHER_TEAM, item_id), AnswerError),
        (
            "action_items.check_allowed",
            lambda: services.action_items.check_allowed(OTHER_TEAM, item_id, BOB),
            AnswerError,
        ),
        (
            "action_items.answer",
            lambda: services.action_items.answer(OTHER_TEAM, item_id, BOB, Answer("done")),
            AnswerError,
        ),
        (
            "meetings.incident_summary",
            lambda: services.meetings.incident_summary(OTHER_TEAM, incident_id, ALICE),
            MeetingError,
        ),
        (
            "meetings.schedule_meeting",
            lambda: services.meetings.schedule_meeting(
                team_id=OTHER_TEAM,
                incident_id=incident_id,
                user_id=ALICE,
                day=rig.today() + timedelta(days=3),
                at=time_of_day(15, 0),
                attendees=[BOB],
            ),
            MeetingError,
        ),
    ]
    for name, call, error in direct:
        try:
            await call()
        except error:
            continue
        failures.append((name, "not refused"))
    check = await services.postmortems.check_submission(OTHER_TEAM, incident_id, PostmortemContent(), ALICE, 0)
    if not check.errors:
        failures.append(("postmortems.check_submission", "no error"))
    assert await services.timeline.current_incident(OTHER_TEAM, INCIDENT_CHANNEL) is None
    assert not failures, failures
    assert await db_state(rig) == db_before
    assert await item_status(rig, item_id) == "open"


# --- 3. private channels -------------------------------------------------------------------------

SECRET_CHANNEL = "GSECRET002"
NOT_A_MEMBER = "private channel you are not a member of"


async def test_outside_a_private_channel_nobody_reads_or_changes_its_incident_but_owners_answer_their_item(
    rig: Rig,
) -> None:
    em = rig.emulator
    em.add_channel(SECRET_CHANNEL, "inc-secret-2", is_private=True, members=[ALICE, BOB, em.bot_user_id])
    # CAROL owns an item (the commander assigned it) but is not in the channel.
    state = await incident_with_everything(
        rig, SECRET_CHANNEL, owners=(BOB, CAROL), secret="hunter2 is the DB password"
    )
    card_ts, incident_id, secret = state["card_ts"], state["incident_id"], state["secret"]
    bob_item, bob_dm, bob_ts = state["items"][BOB]
    carol_item, carol_dm, carol_ts = state["items"][CAROL]
    pm_view = state["view"]
    day = (rig.today() + timedelta(days=3)).isoformat()
    meeting_view = await view_of(
        rig,
        "meeting_modal",
        lambda: press(rig.driver, SECRET_CHANNEL, card_ts, ALICE, "meeting_schedule", str(incident_id)),
    )
    warnings = dict(modal.warnings_view([("Summary", "vague")], incident_id=incident_id), id="VWARN00002")
    await settle(rig)
    d = rig.driver
    cases: list[tuple[str, str, Callable[[], Awaitable[Delivery]]]] = [
        ("/postmortem start", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, "start Me too")),
        ("/postmortem note", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, "note I was here")),
        ("/postmortem timeline", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, "timeline")),
        ("/postmortem resolve", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, "resolve")),
        (
            "/postmortem action",
            "command",
            lambda: d.slash_command(SECRET_CHANNEL, CAROL, f"action <@{CAROL}|carol> {FUTURE} Mine now"),
        ),
        ("/postmortem publish", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, "publish")),
        ("/postmortem meeting", "command", lambda: d.slash_command(SECRET_CHANNEL, CAROL, f"meeting {day} 10:00")),
        (
            "card: Resolve",
            "button",
            lambda: press(d, SECRET_CHANNEL, card_ts, CAROL, "incident_resolve", str(incident_id)),
        ),
        (
            "card: Continue post-mortem",
            "button",
            lambda: press(d, SECRET_CHANNEL, card_ts, CAROL, "postmortem_continue", str(incident_id)),
        ),
        (
            "card: Publish",
            "button",
            lambda: press(d, SECRET_CHANNEL, card_ts, CAROL, "postmortem_publish", str(incident_id)),
        ),
        (
            "card: Schedule meeting",
            "button",
            lambda: press(d, SECRET_CHANNEL, card_ts, CAROL, "meeting_schedule", str(incident_id)),
        ),
        ("message shortcut", "button", lambda: d.message_shortcut(SECRET_CHANNEL, state["message_ts"], CAROL)),
        ("post-mortem form submitted", "view", lambda: d.submit_view(pm_view, CAROL, {"pm_summary": "overwritten"})),
        ("post-mortem form closed", "silent", lambda: d.close_view(pm_view, CAROL, {"pm_summary": "overwritten"})),
        ("modal: Add action item", "modal", lambda: d.click_view_button(pm_view, CAROL, "pm_add_action_item")),
        ("warnings: Submit anyway", "dm", lambda: d.submit_view(warnings, CAROL)),
        (
            "meeting form",
            "view",
            lambda: d.submit_view(meeting_view, CAROL, {"meeting_date": day, "meeting_time": "10:00"}),
        ),
        ("Bob's item: Done", "owner", lambda: press(d, bob_dm, bob_ts, CAROL, "item_done", str(bob_item))),
        ("Bob's item: Won't do", "owner", lambda: press(d, bob_dm, bob_ts, CAROL, "item_wont_do", str(bob_item))),
    ]
    assert len(cases) == 19
    failures = []
    for name, kind, act in cases:
        db_before, slack_before = await db_state(rig), slack_state(rig)
        answers_before, dms_before = len(em.responses()), len(em.messages_in_dm(CAROL))
        views_before = {v["id"] for v in em.views()}
        delivery = await act()
        if delivery.status != 200:
            failures.append((name, "status", delivery.status))
            continue
        expected = "Only the owner" if kind == "owner" else NOT_A_MEMBER
        if kind in ("command", "button", "owner"):
            try:
                said = " ".join(a.get("text", "") for a in (await rig.responses(answers_before + 1))[answers_before:])
            except AssertionError:
                said = ""
        elif kind == "view":
            said = json.dumps(delivery.json())
        elif kind == "dm":
            await settle(rig)
            said = " ".join(m.get("text", "") for m in em.messages_in_dm(CAROL)[dms_before:])
        elif kind == "modal":
            await settle(rig)
            said = json.dumps([v for v in em.views() if v["id"] == pm_view["id"]])
        else:
            said = expected
        if expected not in said:
            failures.append((name, "no clear refusal", said[:200]))
        await settle(rig)
        if await db_state(rig) != db_before:
            failures.append((name, "database changed"))
        if slack_state(rig) != slack_before and kind != "dm":
            failures.append((name, "Slack changed"))
        # Nothing she was shown holds the channel's content.
        shown = (
            json.dumps(em.responses()[answers_before:])
            + json.dumps(em.messages_in_dm(CAROL))
            + json.dumps([v for v in em.views() if v["id"] not in views_before])
        )
        if secret in shown or GOOD["pm_summary"] in shown:
            failures.append((name, "leaked the channel's content"))
    assert not failures, failures

    # CAROL answers her own item from her DM: allowed, and she sees that item only.
    await press(d, carol_dm, carol_ts, CAROL, "item_in_progress", str(carol_item))

    async def in_progress() -> bool:
        return await item_status(rig, carol_item) == "in_progress"

    await rig.eventually(in_progress)
    await settle(rig)
    dm = json.dumps(em.messages_in_dm(CAROL))
    assert f"{ITEM_TITLE} ({CAROL})" in dm and f"{ITEM_TITLE} ({BOB})" not in dm
    assert secret not in dm and GOOD["pm_summary"] not in dm
    # The control: a member asking for the timeline sees what CAROL could not.
    before = len(em.responses())
    await d.slash_command(SECRET_CHANNEL, BOB, "timeline")
    assert secret in json.dumps((await rig.responses(before + 1))[before:])


async def test_membership_is_cached_briefly_and_asked_again(rig: Rig) -> None:
    """One conversations.members call serves a burst of clicks; leaving the channel takes effect after the cache."""
    from bot.access import AccessDenied, ChannelAccess

    em = rig.emulator
    em.add_channel(SECRET_CHANNEL, "inc-secret-2", is_private=True, members=[ALICE, BOB, em.bot_user_id])
    now = [1000.0]
    access = ChannelAccess(rig.bot.client, rig.bot.services.directory, monotonic=lambda: now[0])
    for _ in range(5):
        await access.require_member(SECRET_CHANNEL, ALICE)
    assert len(em.calls_to("conversations.members")) == 1
    try:
        await access.require_member(SECRET_CHANNEL, CAROL)
        raise AssertionError("CAROL is not a member")
    except AccessDenied as exc:
        assert NOT_A_MEMBER in str(exc)
    await access.require_member(INCIDENT_CHANNEL, CAROL)  # public: anyone
    em.fail("conversations.info", error="ratelimited", status=200, times=1)
    now[0] += 3600
    try:
        await access.require_member(SECRET_CHANNEL, ALICE)
        raise AssertionError("an unanswered check refuses a private channel")
    except AccessDenied as exc:
        assert "could not check" in str(exc)


# --- 4. what people type stays text ---------------------------------------------------------------

# Every field a person types into, in the order the flow below fills them. Each gets a marker
# (f00, f01, ...) inside its hostile text, so a leak names its field.
INJECTION_FIELDS = [
    "message captured into the timeline",
    "/postmortem note",
    "/postmortem start title",
    "/postmortem action title",
    "pm_title",
    "pm_summary",
    "pm_users_affected",
    "pm_impact_duration",
    "pm_revenue",
    "pm_support_tickets",
    "pm_detection_how",
    "pm_detection_time",
    "pm_root_cause",
    "pm_why_1",
    "pm_why_2",
    "pm_why_3",
    "pm_why_4",
    "pm_why_5",
    "pm_factors_technical",
    "pm_factors_process",
    "pm_factors_human",
    "pm_went_well",
    "pm_went_wrong",
    "pm_lucky",
    "pm_lessons",
    "action item title (form)",
    "snooze reason",
    "won't-do reason",
    "not-mine note",
    "meeting location",
]
MARK = {field: f"f{n:02d}" for n, field in enumerate(INJECTION_FIELDS)}
# Stored (the item's status note) but shown nowhere today; listed so that a change which
# starts showing it is checked like the rest.
NOT_SHOWN = {"snooze reason"}


def typed(field: str) -> str:
    """What a person types (modal inputs arrive as typed): at most 200 characters, the
    shortest limit of the fields (titles)."""
    m = MARK[field]
    return (
        f'<!channel><!here><@UEVIL01><#CEVIL01><https://evil.example/{m}|x><script>alert(1)</script>">'
        f"<img src=x onerror=alert(1)>[x](https://evil.example/{m})![i](https://evil.example/{m}.png)*b*&lt;a|b"
    )


def encoded(field: str) -> str:
    """The same typed into a message or a slash command, as Slack delivers it: mentions and
    links as markup, the person's own & < > as entities."""
    m = MARK[field]
    return (
        f'<!channel><!here><@UEVIL01|evil><#CEVIL01|evil><https://evil.example/{m}|x>&lt;script&gt;alert(1)&lt;/script&gt;"&gt;'
        f"&lt;img src=x onerror=alert(1)&gt;[x](https://evil.example/{m})![i](https://evil.example/{m}.png)*b*&amp;lt;a|b"
    )


# A live broadcast, mention, channel link or link in mrkdwn, from the hostile texts above.
LIVE_MRKDWN = re.compile(r"<(?:!channel|!here|!everyone|!subteam|@UEVIL|#CEVIL|https?://evil|mailto:)")
# In Markdown: a link, image or reference not escaped, an autolink or raw HTML.
LIVE_MD = re.compile(r"(?<!\\)(?:!?\[[^\]\n]*(?<!\\)\]\s*[(:\[]|<https?://evil|<a\b|<img\b|<script\b)")


def mrkdwn_texts(value: Any, top: bool = True) -> list[str]:
    """Every string Slack reads as mrkdwn in a message, view or answer: mrkdwn text objects
    and a message's own `text` (plain_text objects and input values are never parsed)."""
    found = []
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            found.append(value["text"])
        if top and isinstance(value.get("text"), str):
            found.append(value["text"])
        for key, inner in value.items():
            if key in ("text",) and isinstance(inner, str):
                continue
            found += mrkdwn_texts(inner, top=False)
    elif isinstance(value, list):
        for inner in value:
            found += mrkdwn_texts(inner, top=False)
    elif isinstance(value, str) and value[:1] in "[{":
        try:
            found += mrkdwn_texts(json.loads(value), top=False)
        except ValueError:
            pass
    return found


async def test_nothing_typed_anywhere_becomes_a_live_mention_link_or_markup(rig: Rig) -> None:
    em, d = rig.emulator, rig.driver
    replies: list[Any] = []
    await Rig.start_incident(rig, f"{encoded('/postmortem start title')} --sev 2", INCIDENT_CHANNEL)
    replies.append((await d.slash_command(INCIDENT_CHANNEL, ALICE, "start again")).text)  # "already active: <title>"
    message, _ = await d.post_message(INCIDENT_CHANNEL, BOB, encoded("message captured into the timeline"))
    await rig.processed((await d.react(INCIDENT_CHANNEL, message["ts"], ALICE)).event_id)
    await d.message_shortcut(INCIDENT_CHANNEL, message["ts"], CAROL)  # "already on the timeline of <title>"
    await d.slash_command(INCIDENT_CHANNEL, ALICE, f"note {encoded('/postmortem note')}")
    await d.slash_command(
        INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {FUTURE} {encoded('/postmortem action title')}"
    )
    await rig.responses(3)
    await d.slash_command(INCIDENT_CHANNEL, BOB, "timeline")
    await rig.responses(4)

    view = await rig.open_postmortem(INCIDENT_CHANNEL, ALICE)
    view = await rig.add_action_row(view, ALICE)
    new_row = [k for k in rig.row_keys(view) if k.startswith("n")][0]
    edits = {field: typed(field) for field in INJECTION_FIELDS if field.startswith("pm_")}
    edits.update(
        rig.row_edits(new_row, typed("action item title (form)"), BOB, FUTURE, ticket="https://tracker.example/OPS-1")
    )
    edits["pm_cause_category"] = "configuration"
    answer = await d.submit_view(view, ALICE, edits)
    replies.append(answer.text)
    assert (answer.json() or {}).get("response_action") in (None, "push"), answer.text
    if (answer.json() or {}).get("response_action") == "push":  # the hostile text reads as blame: accept

        async def staged() -> bool:
            async with rig.bot.services.timeline.sessions() as session:
                return await session.scalar(select(Postmortem.pending_submitter)) == ALICE

        await rig.eventually(staged)
        replies.append(
            (await d.submit_view(dict(answer.json()["view"], id="VPUSHED001", state={"values": {}}), ALICE)).text
        )

    async def shared() -> list[ActionItem] | None:
        async with rig.bot.services.timeline.sessions() as session:
            items = list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))
            summary = await session.scalar(select(Postmortem.file_id))
        return items if summary and len(items) == 2 else None

    command_item, form_item = await rig.eventually(shared)
    async with rig.bot.services.timeline.sessions() as session:
        due = list(await session.scalars(select(Nudge).where(Nudge.kind == "action_item", Nudge.status == "pending")))
    for nudge in due:
        await rig.bot.services.nudges.sweep(now=nudge.not_before)
    await settle(rig)
    dms = {}
    for item in (command_item, form_item):
        async with rig.bot.services.timeline.sessions() as session:
            fresh = await session.get(ActionItem, item.id)
        dms[item.id] = (fresh.dm_channel, fresh.dm_ts)

    # The owner answers with words of their own.
    channel, ts = dms[form_item.id]
    snooze = await view_of(
        rig, "item_snooze_modal", lambda: press(d, channel, ts, BOB, "item_snooze", "", option=f"{form_item.id}:1d")
    )
    replies.append((await d.submit_view(snooze, BOB, {"item_snooze_reason": typed("snooze reason")})).text)
    wont = await view_of(
        rig, "item_wont_do_modal", lambda: press(d, channel, ts, BOB, "item_wont_do", str(form_item.id))
    )
    replies.append((await d.submit_view(wont, BOB, {"item_wont_do_reason": typed("won't-do reason")})).text)
    channel, ts = dms[command_item.id]
    mine = await view_of(
        rig, "item_not_mine_modal", lambda: press(d, channel, ts, BOB, "item_not_mine", str(command_item.id))
    )
    replies.append(
        (await d.submit_view(mine, BOB, {"item_new_owner": CAROL, "item_not_mine_note": typed("not-mine note")})).text
    )
    await settle(rig)

    # The meeting, its announcement and invite, and the agenda with the timeline.
    incident = await rig.bot.services.timeline.current_incident(em.team_id, INCIDENT_CHANNEL)
    card_ts = incident.card_ts
    meeting = await view_of(
        rig, "meeting_modal", lambda: press(d, INCIDENT_CHANNEL, card_ts, ALICE, "meeting_schedule", str(incident.id))
    )
    day = (rig.today() + timedelta(days=3)).isoformat()
    replies.append(
        (
            await d.submit_view(
                meeting,
                ALICE,
                {
                    "meeting_date": day,
                    "meeting_time": "15:30",
                    "meeting_attendees": [BOB],
                    "meeting_location": typed("meeting location"),
                },
            )
        ).text
    )

    async def invited() -> bool:
        return any(f["filename"].endswith(".ics") for f in em.uploaded_files())

    await rig.eventually(invited)

    async def agenda_planned() -> Nudge | None:
        async with rig.bot.services.timeline.sessions() as session:
            return await session.scalar(select(Nudge).where(Nudge.kind == "meeting_agenda", Nudge.status == "pending"))

    await rig.bot.services.nudges.sweep(now=(await rig.eventually(agenda_planned)).not_before)
    await d.slash_command(INCIDENT_CHANNEL, ALICE, "publish")

    async def published() -> bool:
        return sum(f["filename"].endswith(".md") for f in em.uploaded_files()) == 2

    await rig.eventually(published)
    await settle(rig)

    # Everything the bot said in Slack: posts, updates, ephemerals, views, response_url answers, HTTP answers.
    said = [
        c["args"]
        for c in em.calls
        if c["method"]
        in (
            "chat.postMessage",
            "chat.update",
            "chat.postEphemeral",
            "views.open",
            "views.update",
            "views.push",
            "views.publish",
        )
    ]
    said += em.responses() + [json.loads(r) for r in replies if r and r.startswith("{")]
    texts = [t for s in said for t in mrkdwn_texts(s)]
    files = {f["filename"]: f["content"].decode() for f in em.uploaded_files()}
    markdown = "\n".join(v for k, v in files.items() if k.endswith(".md"))
    ics = next(v for k, v in files.items() if k.endswith(".ics"))
    html = render_html(await rig.bot.services.postmortems.document(incident))
    everything = "\n".join(texts) + markdown + ics + html

    leaks = []
    for field in INJECTION_FIELDS:
        m = MARK[field]
        if f"evil.example/{m}" not in everything and field not in NOT_SHOWN:
            leaks.append((field, "never shown: the flow did not exercise it"))
    for text in texts:
        for live in LIVE_MRKDWN.findall(text):
            leaks.append(("mrkdwn", live, text[:160]))
    for line in markdown.splitlines():
        if "evil" in line and LIVE_MD.search(line):
            leaks.append(("markdown", LIVE_MD.search(line).group(0), line[:160]))
    page = _Page(html)
    leaks += [("html", tag) for tag in page.tags & {"script", "img", "svg", "iframe", "object"}]
    leaks += [("html", name) for name in page.attributes if name.startswith("on")]
    leaks += [("html", href) for href in page.hrefs if "evil" in href]
    unfolded = ics.replace("\r\n ", "").split("\r\n")
    leaks += [("ics", line[:80]) for line in unfolded if line and not re.match(r"^[A-Z][A-Z0-9-]*[;:]", line)]
    assert len(INJECTION_FIELDS) == 30
    assert not leaks, leaks


class _Page:
    def __init__(self, html: str) -> None:
        from html.parser import HTMLParser

        self.tags: set[str] = set()
        self.attributes: list[str] = []
        self.hrefs: list[str] = []
        page = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag: str, attrs: list) -> None:
                page.tags.add(tag)
                page.attributes += [name for name, _ in attrs]
                page.hrefs += [value or "" for name, value in attrs if name in ("href", "src")]

        Parser(convert_charrefs=True).feed(html)
