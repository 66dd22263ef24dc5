"""Slack faults and a stuck database: the bot acks at once, retries what Slack lets it retry,
reports what it cannot, and writes nothing half-done."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from storage.db import create_engine
from storage.models import InboxEvent, Incident, Message, TimelineEntry
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, Rig

# A guard against a hung test, not a speed target.
DEADLOCK_GUARD_S = 20


async def count(rig: Rig, model: type) -> int:
    async with rig.bot.services.timeline.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_rate_limits_and_server_errors_are_retried_until_the_card_is_posted(rig: Rig) -> None:
    rig.emulator.fail("chat.postMessage", status=429, retry_after=1)
    rig.emulator.fail("pins.add", status=500, times=2)
    card = await rig.start_incident()

    async def pinned() -> bool:
        return rig.emulator.pins(INCIDENT_CHANNEL) == [card["ts"]]

    await rig.eventually(pinned)
    posts = rig.emulator.calls_to("chat.postMessage")
    assert [c["status"] for c in posts[:2]] == [429, 200]
    assert [c["status"] for c in rig.emulator.calls_to("pins.add")] == [500, 500, 200]
    assert await count(rig, Incident) == 1


async def test_a_refused_card_is_reported_and_leaves_no_incident(rig: Rig) -> None:
    rig.emulator.fail("chat.postMessage", error="is_archived", times=1)
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "start Doomed --sev 2")
    (answer,) = await rig.responses(1)
    assert "archived" in answer["text"] and answer["response_type"] == "ephemeral"
    assert await count(rig, Incident) == 0
    assert await count(rig, TimelineEntry) == 0
    # And the channel can still start an incident once Slack agrees.
    await rig.start_incident("Second try")
    assert await count(rig, Incident) == 1


async def test_a_failed_pin_is_reported_but_the_incident_stands(rig: Rig) -> None:
    rig.emulator.fail("pins.add", error="not_pinnable", times=1)
    await rig.start_incident()
    (answer,) = await rig.responses(1)
    assert "pin" in answer["text"]
    assert await count(rig, Incident) == 1


async def test_fetching_an_unseen_message_rides_out_a_rate_limit(rig: Rig) -> None:
    old = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "before the incident")
    await rig.start_incident()
    rig.emulator.fail("conversations.history", status=429, retry_after=1)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, old["ts"], BOB)).event_id)
    assert [i.text for i in await rig.timeline() if i.kind == "message"] == ["before the incident"]


async def test_note_falls_back_to_utc_when_slack_cannot_say_the_time_zone(rig: Rig) -> None:
    await rig.start_incident()
    rig.emulator.fail("users.info", error="user_not_found", times=1)
    await rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "note 00:00 midnight somewhere")
    (answer,) = await rig.responses(1)
    assert "Added to the timeline" in answer["text"]
    (note,) = [i for i in await rig.timeline() if i.kind == "note"]
    assert (note.occurred_at.hour, note.occurred_at.minute) == (0, 0)


class DatabaseLock:
    """Holds the database's write lock from outside the bot, as a long migration or a stuck
    transaction in another process would."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> DatabaseLock:
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            # In a worker thread: waiting for the lock on the event loop's thread would stall
            # the bot's own in-flight commit (aiosqlite needs the loop) and deadlock both.
            def lock() -> sqlite3.Connection:
                conn = sqlite3.connect(parsed.database, isolation_level=None, check_same_thread=False, timeout=30)
                conn.execute("BEGIN IMMEDIATE")
                return conn

            self.sqlite = await asyncio.to_thread(lock)
        else:
            self.engine = create_engine(self.url)
            self.conn = await self.engine.connect()
            await self.conn.execute(
                text("LOCK TABLE event_inbox, processed_events, incidents IN ACCESS EXCLUSIVE MODE")
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if hasattr(self, "sqlite"):
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        else:
            await self.conn.rollback()
            await self.conn.close()
            await self.engine.dispose()


async def test_while_the_database_is_locked_events_are_refused_for_slack_to_retry_and_commands_answered(
    rig: Rig,
) -> None:
    """A 200 means committed. While another process holds the write lock the bot cannot
    commit, so it answers 503 (Slack keeps the event and retries) rather than an ack it could
    not keep; a person's command is still answered, its work done once the lock is gone; and
    Slack's retries are stored once each."""
    await rig.start_incident()
    events = []
    for n in range(3):
        message = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, f"during the lock {n}")
        events.append(dict(message, channel=INCIDENT_CHANNEL, event_ts=message["ts"]))
    async with DatabaseLock(rig.url):
        deliveries = await asyncio.wait_for(
            asyncio.gather(*(rig.driver.send_event(e) for e in events)), DEADLOCK_GUARD_S
        )
        assert [d.status for d in deliveries] == [503, 503, 503], "nothing acknowledged that is not stored"
        assert all((d.json() or {}).get("error") for d in deliveries), "a refusal says why"
        note = await asyncio.wait_for(
            rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "note during the lock"), DEADLOCK_GUARD_S
        )
        assert note.status == 200, "people's commands are still answered"
    await rig.settled()  # Slack's first retry comes a minute later
    for event, delivery in zip(events, deliveries, strict=True):
        retry = await rig.driver.send_event(event, event_id=delivery.event_id, retry_num=1)
        assert retry.status == 200
        await rig.processed(delivery.event_id)
    await rig.responses(1)
    assert await count(rig, Message) == 3
    assert [i.text for i in await rig.timeline() if i.kind == "note"] == ["during the lock"]
    assert "slow_commit" in (await scrape(rig))


async def test_an_acknowledged_event_is_stored_at_its_ack_and_applied_after_a_restart(
    emulator, database_url: str
) -> None:
    """The 200 comes after the commit: a bot stopped before applying an event (here, while
    Slack is slow to give the pinned message) leaves it stored, and the next start applies it."""
    first = await Rig.start(emulator, database_url)
    try:
        await first.start_incident()
        emulator.delay("conversations.history", 30.0)  # the pushpin's fetch keeps it from being applied
        old = emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "from before, fetched late")
        delivery = await first.driver.react(INCIDENT_CHANNEL, old["ts"], BOB)
        assert delivery.status == 200
        assert await count(first, InboxEvent) == 1, "stored when it was acknowledged"
        await first.bot.inbox.stop(timeout=0.2)  # stops before the fetch returns
        assert await count(first, InboxEvent) == 1 and await count(first, Message) == 0
    finally:
        await first.stop()
    second = await Rig.start(emulator, database_url)
    try:
        await second.processed(delivery.event_id)
        assert [i.text for i in await second.timeline() if i.kind == "message"] == ["from before, fetched late"]
        await second.settled()
        assert await count(second, InboxEvent) == 0
    finally:
        await second.stop()


async def scrape(rig: Rig) -> str:
    """The bot's GET /metrics."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(rig.driver.events_url.replace("/slack/events", "/metrics")) as response:
            assert response.status == 200
            return await response.text()
