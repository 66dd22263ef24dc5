"""Scale-out: two real `postmortem-bot serve` replicas and two sweepers on one PostgreSQL.

Slack's deliveries are spread over the replicas as a load balancer would, and a redelivery
(same event id, Slack's retry header) goes to the other replica than the first delivery,
at the same time. Then two `postmortem-bot sweep` processes run at the same instant. Nothing
may be stored twice or lost, and every nudge must reach its owner exactly once.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import SystemClock
from slack_emulator import SlackEmulator
from slack_emulator.driver import SlackDriver
from storage.models import InboxEvent, Message, Nudge, ProcessedEvent
from tests.conftest import ALICE, INCIDENT_CHANNEL
from tests.test_cli import env, run
from tests.test_crash_intake_e2e import SECRET, Serve, Workload

EVENTS = 300
OWNERS = [f"USCALE{n:04d}" for n in range(20)]
C = INCIDENT_CHANNEL


@pytest.fixture
def clock() -> SystemClock:
    """The replicas are real processes on the system clock: Slack's must read the same time."""
    return SystemClock()


async def scalar(url: str, stmt) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())
    finally:
        await engine.dispose()


async def sweep(emulator: SlackEmulator, url: str, at: datetime) -> list[str]:
    code, out, err = await run(
        "sweep",
        "--at",
        at.isoformat(),
        environ=env(SLACK_BOT_TOKEN=emulator.bot_token, SLACK_API_URL=emulator.api_url, DATABASE_URL=url),
    )
    assert code == 0, err[-3000:]
    return [line for line in out.splitlines() if line.startswith("sent ")]


async def test_two_replicas_and_two_sweepers_duplicate_nothing_lose_nothing(
    emulator: SlackEmulator, database_url: str, tmp_path: Path, clock: SystemClock
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database; SQLite is one process's database")
    rng = random.Random(20261201)
    for owner in OWNERS:
        emulator.add_user(owner, owner.lower(), tz="UTC")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    replicas = [Serve(emulator, database_url, tmp_path / "a"), Serve(emulator, database_url, tmp_path / "b")]
    for replica in replicas:
        await replica.start()
    drivers = [SlackDriver(emulator, replica.url, SECRET) for replica in replicas]
    try:
        assert (await drivers[0].slash_command(C, ALICE, "start Scale-out --sev 2")).status == 200
        for _ in range(600):
            if emulator.pins(C):
                break
            await asyncio.sleep(0.05)
        assert emulator.pins(C), "the card was posted and pinned"

        # Slack's side: every event happens in Slack first, then is delivered.
        workload = Workload(drivers[0], rng)
        events = [(workload.next_event(), f"EvScale{n:05d}") for n in range(EVENTS)]
        gate = asyncio.Semaphore(8)

        async def deliver(event: dict, event_id: str, replica: int, retry: int | None) -> int:
            async with gate:
                return (await drivers[replica].send_event(event, event_id=event_id, retry_num=retry)).status

        sends = []
        for event, event_id in events:
            first = rng.randrange(2)
            sends.append(deliver(event, event_id, first, None))
            if rng.random() < 0.5:  # a retry to the other replica, racing the first delivery
                sends.append(deliver(event, event_id, 1 - first, 1))
        rng.shuffle(sends)
        statuses = await asyncio.gather(*sends)
        assert set(statuses) == {200}, "no refusals below the ceiling"

        async def applied() -> bool:
            processed = await scalar(
                database_url,
                select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.event_id.like("EvScale%")),
            )
            waiting = await scalar(database_url, select(func.count()).select_from(InboxEvent))
            return processed == EVENTS and waiting == 0

        for _ in range(600):
            if await applied():
                break
            await asyncio.sleep(0.05)
        assert await applied(), "every acknowledged event applied, and the inbox empty"

        slack_messages = {(m["ts"], m["text"]) for m in emulator.messages(C) if m.get("user") != emulator.bot_user_id}
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                stored = {
                    (row.ts, row.text)
                    for row in await conn.execute(
                        select(Message.ts, Message.text).where(Message.channel_id == C, Message.deleted.is_(False))
                    )
                }
        finally:
            await engine.dispose()
        assert stored == slack_messages, sorted(stored ^ slack_messages)[:5]

        code, out, err = await run("export", "--channel", C, "--format", "json", environ=env(DATABASE_URL=database_url))
        assert code == 0, err
        pinned = {
            (m["ts"], m["text"])
            for m in emulator.messages(C)
            if any(r["name"] == "pushpin" and r["users"] for r in m.get("reactions") or [])
        }
        on_timeline = {(e["ts"], e["text"]) for e in json.loads(out)["timeline"] if e.get("ts")}
        assert on_timeline == pinned

        # Action items for twenty people, added through both replicas; then two sweepers at once.
        due = (clock.now() + timedelta(days=14)).date().isoformat()
        for n, owner in enumerate(OWNERS):
            before = len(emulator.responses())
            reply = await drivers[n % 2].slash_command(C, ALICE, f"action <@{owner}|x> {due} Add alert number {n}")
            assert reply.status == 200
            for _ in range(200):
                if len(emulator.responses()) > before:
                    break
                await asyncio.sleep(0.05)
        assert await scalar(database_url, select(func.count()).select_from(Nudge)) >= len(OWNERS)
        latest = await scalar(database_url, select(func.max(func.extract("epoch", Nudge.not_before))))
        at = datetime.fromtimestamp(latest, UTC) + timedelta(minutes=1)
        while at.weekday() >= 5 or not 9 <= at.hour < 16:  # inside every owner's (UTC) working hours
            at += timedelta(hours=1)
        first, second = await asyncio.gather(sweep(emulator, database_url, at), sweep(emulator, database_url, at))
        sent = first + second
        assert len(sent) == len(set(sent)) == len(OWNERS), (first, second)
        for owner in OWNERS:
            ours = [m for m in emulator.messages_in_dm(owner) if m.get("user") == emulator.bot_user_id]
            assert len(ours) == 1, (owner, len(ours))
    finally:
        for driver in drivers:
            await driver.close()
        for replica in replicas:
            await replica.stop()
    for n, replica in enumerate(replicas):
        assert " ERROR " not in replica.log(1), f"replica {n}: {replica.log(1)[-2000:]}"
