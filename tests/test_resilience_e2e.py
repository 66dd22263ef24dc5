"""Slack faults and a stuck database: the bot acks at once, retries what Slack lets it retry,
reports what it cannot, and writes nothing half-done."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from storage.db import create_engine
from storage.models import Incident, Message, TimelineEntry
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, Rig

# A guard against a hung test, not a speed target: the ack must not wait for the database at all.
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
            await self.conn.execute(text("LOCK TABLE processed_events, incidents IN ACCESS EXCLUSIVE MODE"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if hasattr(self, "sqlite"):
            self.sqlite.execute("ROLLBACK")
            self.sqlite.close()
        else:
            await self.conn.rollback()
            await self.conn.close()
            await self.engine.dispose()


async def test_acks_arrive_while_the_database_is_locked_and_the_work_follows(rig: Rig) -> None:
    await rig.start_incident()
    message = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "written during a lock")
    async with DatabaseLock(rig.url):
        event = dict(message, channel=INCIDENT_CHANNEL, event_ts=message["ts"])
        delivery = await asyncio.wait_for(rig.driver.send_event(event), DEADLOCK_GUARD_S)
        note = await asyncio.wait_for(
            rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "note during the lock"), DEADLOCK_GUARD_S
        )
        assert (delivery.status, note.status) == (200, 200), "acknowledged while the lock is held"
    await rig.processed(delivery.event_id)
    await rig.responses(1)
    assert await count(rig, Message) == 1
    assert [i.text for i in await rig.timeline() if i.kind == "note"] == ["during the lock"]


async def test_stopping_waits_for_acknowledged_work(rig: Rig) -> None:
    """Work acknowledged to Slack finishes before the process lets go of the database."""
    from bot.app import listener_tasks

    await rig.start_incident()
    rig.emulator.delay("conversations.history", 1.0)  # keeps the reaction's listener busy after its ack
    old = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "from before, fetched late")
    delivery = await rig.driver.react(INCIDENT_CHANNEL, old["ts"], BOB)
    assert delivery.status == 200
    assert listener_tasks(), "the listener is still running after the ack"
    await rig.runner.shutdown()
    from bot.app import drain_listeners

    await drain_listeners()
    assert not listener_tasks()
    async with rig.bot.services.timeline.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 1


async def test_a_backlog_of_acknowledged_events_refuses_new_ones_for_slack_to_retry(rig: Rig, monkeypatch) -> None:
    """Past the backlog limit an event gets 503 (Slack keeps it and retries) instead of an ack
    whose work might time out waiting for the database and be lost for good."""
    monkeypatch.setattr("bot.app.MAX_EVENT_BACKLOG", 3)
    await rig.start_incident()
    events = []
    for n in range(5):
        message = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, f"burst {n}")
        events.append(dict(message, channel=INCIDENT_CHANNEL, event_ts=message["ts"]))
    async with DatabaseLock(rig.url):
        deliveries = [await asyncio.wait_for(rig.driver.send_event(e), DEADLOCK_GUARD_S) for e in events]
        assert [d.status for d in deliveries] == [200, 200, 200, 503, 503]
        command = await rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "timeline")
        assert command.status == 200, "people's commands are still answered"
    for delivery in deliveries[:3]:
        await rig.processed(delivery.event_id)
    for event, delivery in zip(events[3:], deliveries[3:], strict=False):  # Slack's retry
        retry = await rig.driver.send_event(event, event_id=delivery.event_id, retry_num=1)
        assert retry.status == 200
        await rig.processed(delivery.event_id)
    assert await count(rig, Message) == 5
