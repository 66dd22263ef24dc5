"""Benchmark: one nudge sweep over N open action items of which a fraction is due.

What it shows: a sweep's cost follows what is due, not what exists, and what sending costs
the bot. It seeds N open action items with their next nudge planned (most in the future,
`--due` of them now, each to a different person the bot already knows, as it does once it
has assigned them), then times `NudgeService.sweep` (claim, compose, send over real HTTP to
the Slack emulator, mark, plan the next) and sweeps with nothing due.

The emulator runs on its own thread and event loop, so the bot's CPU is the process's CPU
less the emulator thread's (SQLite's own thread, aiosqlite's, counts as the bot's). The
baseline, measured in the same run: a DM to each of the same people posted straight from
the bot's client, as concurrently as the sweep sends, with no database at all; the sweep's wall and
CPU time are printed as ratios of it.

    .venv/bin/python bench/sweep.py                       # SQLite, 100,000 items, 1% due
    .venv/bin/python bench/sweep.py --database postgresql+asyncpg://postgres@127.0.0.1/postgres
    .venv/bin/python bench/sweep.py --profile sweep.html  # pyinstrument of the busy sweep ('.[bench]')
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from bot.clock import FixedClock
from bot.config import Settings
from bot.nudges import SEND_CONCURRENCY, item_subject
from bot.services import Services
from bot.slack import create_client
from slack_emulator import SlackEmulator
from storage.db import create_engine, create_session_factory, migrate
from storage.models import ActionItem, Incident, KnownPerson, Nudge

# A Tuesday, 10:00 UTC: inside working hours for the UTC owners below.
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
CHUNK = 5_000
IDLE_RUNS = 9


def owner(n: int, owners: int) -> str:
    return f"UBENCH{n % owners:05d}"


class EmulatorThread:
    """The Slack emulator on its own thread and loop, so its CPU time can be told apart."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.call(self.emulator.start)

    def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result()

    def cpu(self) -> float:
        async def thread_time() -> float:
            return time.thread_time()

        return float(self.call(thread_time))

    def stop(self) -> None:
        self.call(self.emulator.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


class Meter:
    """Wall time and the bot's CPU time (process CPU less the emulator thread's) of a block."""

    def __init__(self, emulator: EmulatorThread) -> None:
        self.emulator = emulator

    def __enter__(self) -> Meter:
        self.wall0, self.cpu0, self.emu0 = time.perf_counter(), time.process_time(), self.emulator.cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.emu_cpu = self.emulator.cpu() - self.emu0
        self.bot_cpu = time.process_time() - self.cpu0 - self.emu_cpu


async def seed(sessions: Any, items: int, due: int, owners: int) -> None:
    async with sessions.begin() as session:
        await session.execute(
            insert(Incident),
            [
                {
                    "team_id": "T0EMULATOR",
                    "channel_id": "CBENCH0001",
                    "title": "Bench incident",
                    "severity": 2,
                    "status": "resolved",
                    "commander_id": "UBENCH00000",
                    "started_at": NOW - timedelta(days=3),
                    "resolved_at": NOW - timedelta(days=2),
                    "meeting_attendees": [],
                    "meeting_requested": False,
                }
            ],
        )
        # The bot keeps whom it has met (users.info at assignment, user_change since).
        await session.execute(
            insert(KnownPerson),
            [
                {"user_id": owner(n, owners), "handle": f"owner{n}", "tz": "UTC", "is_bot": False, "deleted": False}
                for n in range(owners)
            ],
        )
    for start in range(0, items, CHUNK):
        rows, nudges = [], []
        for n in range(start, min(items, start + CHUNK)):
            rows.append(
                {
                    "id": n + 1,
                    "team_id": "T0EMULATOR",
                    "incident_id": 1,
                    "title": f"Add alert {n} at 800 ms",
                    "owner_id": owner(n, owners),
                    "due": date(2026, 12, 20),
                    "priority": "P2",
                    "type": "prevent",
                    "status": "open",
                    "created_by": "UBENCH00000",
                    "created_at": NOW - timedelta(days=2),
                    "updated_at": NOW - timedelta(days=2),
                }
            )
            is_due = n < due
            nudges.append(
                {
                    "team_id": "T0EMULATOR",
                    "kind": "action_item",
                    "subject": item_subject(n + 1),
                    "slot": "assigned" if is_due else "before",
                    "recipient": owner(n, owners),
                    "not_before": NOW - timedelta(minutes=5) if is_due else NOW + timedelta(days=16),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": NOW - timedelta(days=2),
                }
            )
        async with sessions.begin() as session:
            await session.execute(insert(ActionItem), rows)
            await session.execute(insert(Nudge), nudges)


async def post_directly(client: Any, users: list[str], concurrency: int) -> None:
    """The baseline: a DM to each of `users` straight from the client, `concurrency` at once."""
    gate = asyncio.Semaphore(concurrency)

    async def post(user: str) -> None:
        async with gate:
            await client.chat_postMessage(channel=user, text="Baseline: a reminder about your action item")

    await asyncio.gather(*(post(u) for u in users))


async def main(database: str | None, items: int, due_fraction: float, profile: str | None) -> None:
    workdir = tempfile.mkdtemp(prefix="pm-bench-")
    url = database or f"sqlite+aiosqlite:///{workdir}/bench.db"
    admin_url = None
    if url.startswith("postgresql"):
        admin_url = url
        name = f"pm_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        url = url.rsplit("/", 1)[0] + f"/{name}"
    due = int(items * due_fraction)
    owners = max(due, 1)  # every due nudge to a different person
    emulator = SlackEmulator()
    for n in range(owners):
        emulator.add_user(owner(n, owners), f"owner{n}")
    emulator.add_channel("CBENCH0001", "inc-bench", members=[emulator.bot_user_id])
    slack = EmulatorThread(emulator)
    slack.start()
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = create_session_factory(engine)
        started = time.perf_counter()
        await seed(sessions, items, due, owners)
        seeded = time.perf_counter() - started
        settings = Settings(bot_token=emulator.bot_token, slack_api_url=emulator.api_url)
        client = create_client(settings)
        with Meter(slack) as base:
            await post_directly(client, [owner(n, owners) for n in range(due)], SEND_CONCURRENCY)
        # Wired as the bot wires it, so what the bot keeps of the people it looks up is written here too.
        services = Services.build(settings, client, sessions, FixedClock(NOW))
        service = services.nudges
        profiler = None
        if profile:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="enabled")
            profiler.start()
        with Meter(slack) as busy:
            report = await service.sweep(NOW)
        if profiler is not None:
            profiler.stop()
            assert profile is not None
            with open(profile, "w") as out:
                out.write(profiler.output_html() if profile.endswith(".html") else profiler.output_text())
        idle = []
        gc.collect()  # the busy sweep's garbage is not the idle sweep's cost
        for _ in range(IDLE_RUNS):
            with Meter(slack) as quiet:
                idle_report = await service.sweep(NOW)
            idle.append(quiet.wall)
            assert not idle_report.sent
        await services.directory.flush()
        users_info = sum(1 for c in emulator.calls if c["method"] == "users.info")
        limited = sum(1 for c in emulator.calls if c["status"] == 429)
        sent = max(1, len(report.sent))
        backend = url.split(":", 1)[0]
        print(f"backend={backend} items={items} due={due} (to {owners} people) seeded_in={seeded:.1f}s")
        print(
            f"baseline: {due} DMs posted straight from the client, {SEND_CONCURRENCY} at once: "
            f"{base.wall:.2f} s wall, {base.bot_cpu / max(1, due) * 1000:.2f} ms bot CPU each"
        )
        print(
            f"sweep with {due} due: {busy.wall:.2f} s wall ({len(report.sent) / busy.wall:.0f} sent/s), "
            f"sent={len(report.sent)}, bot CPU {busy.bot_cpu / sent * 1000:.2f} ms per nudge "
            f"(emulator {busy.emu_cpu / sent * 1000:.2f} ms); "
            f"{busy.wall / base.wall:.1f}x the baseline's wall, {busy.bot_cpu / max(base.bot_cpu, 1e-9):.1f}x its CPU"
        )
        print(f"  users.info calls: {users_info}; answered 429: {limited}")
        print(
            f"sweep with 0 due: median {statistics.median(idle) * 1000:.1f} ms of {IDLE_RUNS} "
            f"(min {min(idle) * 1000:.1f}, max {max(idle) * 1000:.1f}; cost of {items} items existing)"
        )
        assert len(report.sent) == due, report.lines()[:5]
    finally:
        await engine.dispose()
        slack.stop()
        if admin_url:
            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="database URL (default: a new SQLite file)")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.01, help="fraction of items due now")
    parser.add_argument("--profile", help="write a pyinstrument profile of the busy sweep here (.html or text)")
    args = parser.parse_args()
    asyncio.run(main(args.database, args.items, args.due, args.profile))
