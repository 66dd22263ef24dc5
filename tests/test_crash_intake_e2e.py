"""Crash during intake: a real `postmortem-bot serve` is killed with SIGKILL at random points
while signed events pour in, and restarted, again and again. An event it acked was committed
to its inbox first, so the next start applies it; events it never answered are redelivered
with Slack's retry headers, or dropped, as Slack does after its last retry.
After the last restart the bot reconciles (at start-up, then `/postmortem sync`), and the
stored timeline must be exactly Slack's: nothing missing, nothing doubled.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.clock import SystemClock
from slack_emulator import SlackEmulator
from slack_emulator.driver import SlackDriver
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL
from tests.test_cli import SCRIPT, env, free_port, run

C = INCIDENT_CHANNEL
PEOPLE = (ALICE, BOB, CAROL)
KILLS = int(os.environ.get("POSTMORTEM_CRASH_KILLS", "10"))
SEED = int(os.environ.get("POSTMORTEM_CRASH_SEED", "20261123"))
EVENTS_PER_ROUND = 40
SECRET = "crash-secret"
START_UP_SYNC = re.compile(r"start-up sync: (\d+) active incident\(s\) checked, (\d+) repair\(s\)")


@pytest.fixture
def clock() -> SystemClock:
    """The bot here is a real process on the system clock: Slack's must read the same time."""
    return SystemClock()


@dataclass
class Serve:
    """One `postmortem-bot serve` process at a time, on a fixed port, logging to files."""

    emulator: SlackEmulator
    database_url: str
    logs: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, n: int | None = None) -> str:
        return (self.logs / f"serve{self.starts if n is None else n}.log").read_text()

    async def start(self) -> None:
        self.starts += 1
        environ = env(
            SLACK_BOT_TOKEN=self.emulator.bot_token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=self.emulator.api_url,
            DATABASE_URL=self.database_url,
            LOG_LEVEL="INFO",
        )
        with open(self.logs / f"serve{self.starts}.log", "wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                SCRIPT,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                env=environ,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.process.returncode is None, self.log()[-3000:]
                try:
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "serve did not become healthy"
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 60)

    async def start_up_sync(self) -> tuple[int, int]:
        """Wait for this process's start-up sync; (incidents checked, repairs)."""
        deadline = time.monotonic() + 60
        while not (found := START_UP_SYNC.search(self.log())):
            assert time.monotonic() < deadline, self.log()[-3000:]
            await asyncio.sleep(0.05)
        return int(found.group(1)), int(found.group(2))


class Workload:
    """People acting in the incident channel; Slack's state changes at once, the events queue."""

    def __init__(self, driver: SlackDriver, rng: random.Random) -> None:
        self.driver = driver
        self.emulator = driver.emulator
        self.rng = rng
        self.live: list[str] = []
        self.made = 0

    def next_event(self) -> dict[str, Any]:
        rng, driver, emulator = self.rng, self.driver, self.emulator
        self.made += 1
        while True:
            roll = rng.random()
            if roll < 0.35 or len(self.live) < 5:
                thread = rng.choice(self.live) if self.live and rng.random() < 0.2 else None
                parent = emulator.message(C, thread) if thread else None
                if parent is not None and parent.get("thread_ts") not in (None, parent["ts"]):
                    thread = None  # no replies to replies
                message, event = driver.posted_event(C, rng.choice(PEOPLE), f"update {self.made} <&>", thread_ts=thread)
                self.live.append(message["ts"])
                return event
            if roll < 0.45:
                return driver.edited_event(C, rng.choice(self.live), f"edited {self.made}")
            if roll < 0.5:
                ts = rng.choice(self.live)
                if any(m.get("thread_ts") == ts and m["ts"] != ts for m in emulator.messages(C)):
                    continue  # keep thread parents simple: Slack would leave a tombstone
                self.live.remove(ts)
                return driver.deleted_event(C, ts)
            ts, user = rng.choice(self.live), rng.choice(PEOPLE)
            reactions = (emulator.message(C, ts) or {}).get("reactions") or []
            has = any(r["name"] == "pushpin" and user in r["users"] for r in reactions)
            return driver.reacted_event(C, ts, user, "pushpin", added=not has)


@dataclass
class Tally:
    kills: int = 0
    delivered: int = 0
    refused: int = 0  # connection refused or cut: Slack will retry
    redelivered: int = 0
    dropped: int = 0  # Slack gave up after its retries
    start_up_repairs: int = 0


async def test_sigkill_during_intake_loses_and_doubles_nothing_after_reconciliation(
    emulator: SlackEmulator, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # Ten restarts within a minute each read the channel back from Slack, and each new process
    # paces its own calls: Slack's Tier 3 would make the test wait minutes for nothing it
    # checks. The rate limits have their own tests (test_emulator_rate_limits, the soak).
    emulator.rate_limits.enabled = False
    serve = Serve(emulator, database_url, tmp_path)
    tally = Tally()
    await serve.start()
    driver = SlackDriver(emulator, serve.url, SECRET)
    try:
        delivery = await driver.slash_command(C, ALICE, "start Crash test --sev 1")
        assert delivery.status == 200
        for _ in range(600):
            if emulator.pins(C):
                break
            await asyncio.sleep(0.05)
        assert emulator.pins(C), "the card was posted and pinned"
        workload = Workload(driver, rng)
        retries: list[tuple[dict, str, int]] = []  # (event, event_id, attempts so far)
        gate = asyncio.Semaphore(8)

        async def deliver(event: dict, event_id: str, attempt: int) -> bool:
            async with gate:
                try:
                    status = (await driver.send_event(event, event_id=event_id, retry_num=attempt or None)).status
                except (TimeoutError, aiohttp.ClientError):
                    status = None
            if status == 200:
                tally.delivered += 1
                return True
            tally.refused += 1
            if attempt < 3 and rng.random() < 0.8:
                retries.append((event, event_id, attempt + 1))
            else:
                tally.dropped += 1
            return False

        for round_no in range(KILLS):
            # Slack retries what went unanswered, now that the bot is back.
            pending, retries[:] = list(retries), []
            tally.redelivered += len(pending)
            sends = [deliver(e, i, a) for e, i, a in pending]
            sends += [
                deliver(workload.next_event(), f"EvCrash{round_no:02d}{n:03d}", 0) for n in range(EVENTS_PER_ROUND)
            ]
            answered_before = tally.delivered + tally.refused
            sending = asyncio.gather(*sends)
            # A random point during intake: after some of this round's deliveries were answered.
            cut = rng.randint(1, len(sends) - 1)
            while tally.delivered + tally.refused - answered_before < cut and not sending.done():
                await asyncio.sleep(0.001)
            await serve.kill()
            tally.kills += 1
            await sending
            await serve.start()
            tally.start_up_repairs += (await serve.start_up_sync())[1]

        # The last restart: the rest of Slack's retries arrive, then the bot reconciles.
        pending, retries[:] = list(retries), []
        tally.redelivered += len(pending)
        for event, event_id, attempt in pending:
            status = (await driver.send_event(event, event_id=event_id, retry_num=attempt)).status
            assert status == 200
        await asyncio.sleep(0.5)  # let the acked redeliveries finish: a sync after them is the last word
        delivery = await driver.slash_command(C, ALICE, "sync")
        assert delivery.status == 200
        for _ in range(600):
            if emulator.responses():
                break
            await asyncio.sleep(0.05)
        final_sync = emulator.responses()[-1]["text"]

        code, out, err = await run("export", "--channel", C, "--format", "json", environ=env(DATABASE_URL=database_url))
        assert code == 0, err
        timeline = [e for e in json.loads(out)["timeline"] if e["kind"] == "message"]
        expected = {
            (m["ts"], m["text"].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
            for m in emulator.messages(C)
            if any(r["name"] == "pushpin" and r["users"] for r in m.get("reactions") or [])
        }
        stored = {(e["ts"], e["text"]) for e in timeline}
        summary = f"seed {SEED}: {tally}; final sync: {final_sync!r}"
        print(summary)
        assert len(timeline) == len(stored), f"a message is doubled: {summary}"
        assert stored == expected, (summary, sorted(stored ^ expected)[:6])
        bot_posts = [m for m in emulator.messages(C) if m.get("user") == emulator.bot_user_id]
        assert len(bot_posts) == 1, "the card was posted once"
        assert tally.kills == KILLS and tally.refused > 0, summary
        # The suite proves something only if kills lost events that reconciliation repaired.
        assert tally.start_up_repairs > 0, summary
    finally:
        await driver.close()
        await serve.stop()


async def test_events_answered_200_survive_a_sigkill_right_after_with_slack_unreachable(
    emulator: SlackEmulator, database_url: str, tmp_path: Path
) -> None:
    """The issue's durable ack: a 200 means committed. Events answered 200, then the process
    killed at once, before it could apply them; Slack will not give the channel's history
    back, so reconciliation cannot repair anything. The restarted bot still has every one."""
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from storage.models import Message

    emulator.rate_limits.enabled = False
    serve = Serve(emulator, database_url, tmp_path)
    await serve.start()
    driver = SlackDriver(emulator, serve.url, SECRET)
    engine = create_async_engine(database_url)

    async def stored() -> int:
        async with engine.connect() as conn:
            found = await conn.execute(select(func.count()).select_from(Message).where(Message.text.like("acked %")))
            return int(found.scalar_one())

    try:
        assert (await driver.slash_command(C, ALICE, "start Durable acks --sev 2")).status == 200
        for _ in range(600):
            if emulator.pins(C):
                break
            await asyncio.sleep(0.05)
        for method in ("conversations.history", "conversations.replies"):
            emulator.fail(method, status=500, times=10_000)
        reads_before = len(emulator.calls_to("conversations.history"))
        messages = [emulator.post_user_message(C, ALICE, f"acked {n}") for n in range(30)]
        deliveries = await asyncio.gather(*(driver.send_event(dict(m, channel=C, event_ts=m["ts"])) for m in messages))
        assert [d.status for d in deliveries] == [200] * 30
        await serve.kill()
        await serve.start()
        for _ in range(600):
            if await stored() == 30:
                break
            await asyncio.sleep(0.05)
        assert await stored() == 30, "every event answered 200 was kept"
        reads = emulator.calls_to("conversations.history")[reads_before:]
        assert all(call["status"] == 500 for call in reads), "nothing came from reading Slack back"
    finally:
        await driver.close()
        await serve.stop()
        await engine.dispose()
