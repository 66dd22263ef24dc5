"""Benchmark: one nudge sweep over N open action items of which a fraction is due.

The point to show: a sweep's cost follows what is due, not what exists. It seeds N open
action items with their next nudge planned (most in the future, `--due` of them now), then
times `NudgeService.sweep` (claim, compose, send over real HTTP to the Slack emulator,
mark, plan the next) and a second sweep with nothing due.

    .venv/bin/python bench/sweep.py                       # SQLite, 100,000 items, 1% due
    .venv/bin/python bench/sweep.py --database postgresql+asyncpg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, text

from bot.clock import FixedClock
from bot.config import Settings
from bot.nudges import item_subject
from bot.services import Services
from bot.slack import create_client
from slack_emulator import SlackEmulator
from storage.db import create_engine, create_session_factory, migrate
from storage.models import ActionItem, Incident, Nudge

# A Tuesday, 10:00 UTC: inside working hours for the UTC owners below.
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OWNERS = 500
CHUNK = 5_000


async def seed(sessions, items: int, due: int) -> None:
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
                    "commander_id": "UBENCH0000",
                    "started_at": NOW - timedelta(days=3),
                    "resolved_at": NOW - timedelta(days=2),
                    "meeting_attendees": [],
                    "meeting_requested": False,
                }
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
                    "owner_id": f"UBENCH{n % OWNERS:04d}",
                    "due": date(2026, 12, 20),
                    "priority": "P2",
                    "type": "prevent",
                    "status": "open",
                    "created_by": "UBENCH0000",
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
                    "recipient": f"UBENCH{n % OWNERS:04d}",
                    "not_before": NOW - timedelta(minutes=5) if is_due else NOW + timedelta(days=16),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": NOW - timedelta(days=2),
                }
            )
        async with sessions.begin() as session:
            await session.execute(insert(ActionItem), rows)
            await session.execute(insert(Nudge), nudges)


async def main(database: str | None, items: int, due_fraction: float) -> None:
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
    emulator = SlackEmulator()
    for n in range(OWNERS):
        emulator.add_user(f"UBENCH{n:04d}", f"owner{n}")
    emulator.add_channel("CBENCH0001", "inc-bench", members=[emulator.bot_user_id])
    await emulator.start()
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = create_session_factory(engine)
        started = time.perf_counter()
        await seed(sessions, items, due)
        seeded = time.perf_counter() - started
        settings = Settings(bot_token=emulator.bot_token, slack_api_url=emulator.api_url)
        # Wired as the bot wires it, so what the bot keeps of the people it looks up is written here too.
        services = Services.build(settings, create_client(settings), sessions, FixedClock(NOW))
        service = services.nudges
        started = time.perf_counter()
        report = await service.sweep(NOW)
        busy = time.perf_counter() - started
        started = time.perf_counter()
        idle_report = await service.sweep(NOW)
        idle = time.perf_counter() - started
        backend = url.split(":", 1)[0]
        print(f"backend={backend} items={items} due={due} seeded_in={seeded:.1f}s")
        print(
            f"sweep with {due} due:  {busy:.2f} s  sent={len(report.sent)}  "
            f"({busy / max(1, len(report.sent)) * 1000:.1f} ms per nudge, incl. an HTTP post to the emulator)"
        )
        print(
            f"sweep with 0 due:    {idle * 1000:.1f} ms  sent={len(idle_report.sent)}  (cost of {items} items existing)"
        )
        assert len(report.sent) == due and not idle_report.sent
        await services.directory.flush()
    finally:
        await engine.dispose()
        await emulator.stop()
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
    args = parser.parse_args()
    asyncio.run(main(args.database, args.items, args.due))
