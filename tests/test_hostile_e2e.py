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
