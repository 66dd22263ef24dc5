"""Hostile conditions: redelivery storms and malformed input, end to end on both databases."""

from __future__ import annotations

import asyncio
import random

from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, Rig

STORM_EVENTS = 1000
PEOPLE = (ALICE, BOB, CAROL)


async def test_redelivery_storm_leaves_exactly_the_right_timeline(rig: Rig) -> None:
    """1,000 events (posts, edits, deletes, pushpins on and off), each delivered one to four
    times with Slack's retry headers, all shuffled: the stored timeline is exactly Slack's."""
    rng = random.Random(20261123)
    await rig.start_incident()
    driver, emulator = rig.driver, rig.emulator
    events: list[dict] = []
    live: list[str] = []
    while len(events) < STORM_EVENTS:
        roll = rng.random()
        if roll < 0.3 or len(live) < 5:
            thread = rng.choice(live) if live and rng.random() < 0.2 else None
            parent = emulator.message(INCIDENT_CHANNEL, thread) if thread else None
            if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
                thread = None  # no replies to replies
            message, event = driver.posted_event(INCIDENT_CHANNEL, rng.choice(PEOPLE), f"note {len(events)} <&>", thread_ts=thread)
            live.append(message["ts"])
        elif roll < 0.4:
            event = driver.edited_event(INCIDENT_CHANNEL, rng.choice(live), f"edited at {len(events)}")
        elif roll < 0.45:
            ts = rng.choice(live)
            if any(m.get("thread_ts") == ts and m["ts"] != ts for m in emulator.messages(INCIDENT_CHANNEL)):
                continue  # keep thread parents: Slack would leave a tombstone message
            live.remove(ts)
            event = driver.deleted_event(INCIDENT_CHANNEL, ts)
        else:
            ts, user = rng.choice(live), rng.choice(PEOPLE)
            reactions = (emulator.message(INCIDENT_CHANNEL, ts) or {}).get("reactions") or []
            has = any(r["name"] == "pushpin" and user in r["users"] for r in reactions)
            event = driver.reacted_event(INCIDENT_CHANNEL, ts, user, "pushpin", added=not has)
        events.append(event)

    deliveries = []
    for n, event in enumerate(events):
        event_id = f"EvStorm{n:05d}"
        for attempt in range(rng.randint(1, 4)):
            deliveries.append((event, event_id, attempt or None))
    rng.shuffle(deliveries)
    gate = asyncio.Semaphore(8)

    async def deliver(event: dict, event_id: str, retry: int | None) -> int:
        async with gate:
            return (await driver.send_event(event, event_id=event_id, retry_num=retry)).status

    statuses = await asyncio.gather(*(deliver(*d) for d in deliveries))
    assert set(statuses) == {200}
    for n in range(len(events)):
        await rig.processed(f"EvStorm{n:05d}")

    expected = {
        (m["ts"], m["text"])
        for m in emulator.messages(INCIDENT_CHANNEL)
        if any(r["name"] == "pushpin" and r["users"] for r in m.get("reactions") or [])
    }
    stored = {(i.ts, i.text) for i in await rig.timeline() if i.kind == "message"}
    assert stored == expected, (len(stored), len(expected), sorted(stored ^ expected)[:5])
    assert len(deliveries) > STORM_EVENTS * 2


# --- fuzzing: correctly signed, malformed payloads ------------------------------------------

import json  # noqa: E402

import pytest  # noqa: E402
import logging  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
OUR_ACTIONS = ["incident_resolve", "postmortem_continue", "postmortem_publish", "pm_add_action_item",
               "pm_remove_action_item", "item_done", "item_in_progress", "item_snooze", "item_change_due",
               "item_not_mine", "item_wont_do", "meeting_schedule"]
OUR_VIEWS = ["postmortem_modal", "postmortem_warnings", "item_change_due_modal", "item_not_mine_modal",
             "item_wont_do_modal", "item_snooze_modal", "meeting_modal", "postmortem_loading"]
EVENT_TYPES = ["message", "reaction_added", "reaction_removed", "app_home_opened", "channel_archive", "emoji_changed"]


def maybe(value: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(value, JSON)


events = st.fixed_dictionaries(
    {"type": maybe(st.sampled_from(EVENT_TYPES)), "subtype": maybe(st.sampled_from(["message_changed", "message_deleted", "file_share"])),
     "channel": maybe(st.just(INCIDENT_CHANNEL)), "user": maybe(st.sampled_from(PEOPLE)), "text": JSON, "ts": maybe(st.just("1795442400.000100")),
     "item": JSON, "message": JSON, "deleted_ts": JSON, "reaction": maybe(st.just("pushpin")), "event_ts": JSON}
)
commands = st.fixed_dictionaries(
    {"command": st.just("/postmortem"), "text": st.text(max_size=60), "team_id": maybe(st.just("T0EMULATOR")),
     "channel_id": maybe(st.just(INCIDENT_CHANNEL)), "user_id": maybe(st.sampled_from(PEOPLE)), "trigger_id": st.text(max_size=10),
     "response_url": st.just("http://127.0.0.1:9/unreachable")}
)
actions = st.fixed_dictionaries(
    {"type": st.just("block_actions"), "user": maybe(st.fixed_dictionaries({"id": st.sampled_from(PEOPLE)})),
     "team": maybe(st.fixed_dictionaries({"id": st.just("T0EMULATOR")})), "trigger_id": JSON,
     "channel": maybe(st.fixed_dictionaries({"id": st.just(INCIDENT_CHANNEL)})), "view": JSON,
     "actions": st.lists(st.fixed_dictionaries({"action_id": st.sampled_from(OUR_ACTIONS), "block_id": JSON, "value": JSON,
                                                 "selected_option": JSON, "type": st.just("button")}), min_size=1, max_size=1)}
)
views = st.fixed_dictionaries(
    {"type": st.sampled_from(["view_submission", "view_closed"]), "user": maybe(st.fixed_dictionaries({"id": st.sampled_from(PEOPLE)})),
     "team": maybe(st.fixed_dictionaries({"id": st.just("T0EMULATOR")})),
     "view": st.fixed_dictionaries({"id": st.just("VFUZZ"), "type": maybe(st.just("modal")), "callback_id": st.sampled_from(OUR_VIEWS), "private_metadata": maybe(st.text(max_size=30)),
                                    "state": st.fixed_dictionaries({"values": JSON}), "blocks": JSON})}
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["event", "command", "action", "view"]), data=st.data())
async def test_fuzzed_signed_payloads_never_get_a_5xx_nor_crash_a_listener(
    rig: Rig, caplog: "pytest.LogCaptureFixture", kind: str, data: st.DataObject
) -> None:
    caplog.set_level(logging.ERROR, logger="postmortem_bot.app")
    if kind == "event":
        delivery = await rig.driver.send_event(data.draw(events))
    elif kind == "command":
        delivery = await rig.driver.send(urlencode(data.draw(commands)), "application/x-www-form-urlencoded")
    else:
        payload = data.draw(actions if kind == "action" else views)
        delivery = await rig.driver.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
    assert delivery.status < 500, (kind, delivery.status, delivery.text[:300])
    # Listeners run after the ack; one that failed on an earlier example shows up here.
    crashed = [r.getMessage() for r in caplog.records if r.name == "postmortem_bot.app" and "listener failed" in r.getMessage()]
    assert not crashed, crashed


async def test_tokens_and_signing_secret_never_reach_the_logs_even_at_debug(rig: Rig, caplog: "pytest.LogCaptureFixture") -> None:
    caplog.set_level(logging.DEBUG)
    card = await rig.start_incident()
    message, delivery = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, "db at 95%")
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, message["ts"], ALICE)).event_id)
    await rig.driver.send_event(dict(message, channel=INCIDENT_CHANNEL), secret="forged")
    await rig.driver.click_message_button(INCIDENT_CHANNEL, card["ts"], ALICE, "incident_resolve")
    await rig.latest_view()
    text = "\n".join(
        record.getMessage() + (record.exc_text or "") + str(getattr(record, "args", ""))
        for record in caplog.records
    )
    assert len(caplog.records) > 50, "the flow was logged at DEBUG"
    for secret in (rig.emulator.bot_token, rig.driver.signing_secret):
        assert secret not in text, f"{secret[:6]}… appears in the logs"
