"""Test rig: a real Slack Web API emulator, the real bot on a real port, a signed driver, and
both databases. End-to-end tests take the `rig` fixture and run once per database backend.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from bot.clock import Clock, ShiftedClock
from bot.config import Settings
from slack_emulator import SlackEmulator
from slack_emulator.harness import Harness
from storage.db import create_engine, migrate
from tracker_emulator import JiraEmulator, LinearEmulator

SIGNING_SECRET = "test-signing-secret"
PG_ADMIN_URL = os.environ.get("POSTMORTEM_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")

# People and channels of the emulated workspace.
ALICE, BOB, CAROL = "UALICE0001", "UBOB000001", "UCAROL0001"
PAGERBOT = "UPAGERBOT1"
INCIDENT_CHANNEL, QUIET_CHANNEL, PRIVATE_CHANNEL = "CINCIDENT1", "CQUIET0001", "GPRIVATE01"

TEST_START = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
"""Where the clock of every end-to-end test starts, whatever the date and hour it runs: a
Tuesday, 09:00 in New York (Alice), 14:00 in Paris (Bob), 22:00 in Tokyo (Carol), so
that working hours, weekends and daylight saving time fall the same way on every run."""


def _run_aside(coro: Awaitable[Any]) -> Any:
    """Run a coroutine to completion on its own loop in a thread: session-scoped set-up is
    reached from inside tests' running loops, where asyncio.run() is not allowed."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- databases ------------------------------------------------------------------------------


async def _pg_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    engine = create_engine(PG_ADMIN_URL)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any failure means "not here"
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def pg_database_url() -> Any:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    reason = _run_aside(_pg_available())
    if reason:
        if os.environ.get("POSTMORTEM_REQUIRE_PG"):
            pytest.fail(f"{reason} (POSTMORTEM_REQUIRE_PG is set, as in CI)")
        pytest.skip(f"{reason}; start PostgreSQL or set POSTMORTEM_TEST_PG to run these on it too")
    name = f"postmortem_test_{uuid.uuid4().hex[:10]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    async def create() -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    async def drop() -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    _run_aside(create())
    yield url
    _run_aside(drop())


async def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "TRUNCATE incidents, messages, reactions, timeline_entries, processed_events, event_inbox, postmortems, postmortem_revisions, action_items, nudges, people, channels, tracker_choices, ticket_jobs, tracker_cursors, tracker_notices RESTART IDENTITY CASCADE"
            )
        )
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'postmortem.db'}"
    url = request.getfixturevalue("pg_database_url")
    await _truncate_pg(url)
    return url


# --- Slack ----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ShiftedClock:
    """The clock the emulated Slack and the bot share: it starts at TEST_START and ticks."""
    return ShiftedClock(TEST_START)


@pytest.fixture
async def emulator(clock: Clock) -> Any:
    slack = SlackEmulator(clock=clock)
    slack.add_user(ALICE, "alice", tz="America/New_York")
    slack.add_user(BOB, "bob", tz="Europe/Paris")
    slack.add_user(CAROL, "carol", tz="Asia/Tokyo")
    slack.add_user(PAGERBOT, "pagerbot", is_bot=True)
    slack.add_channel(INCIDENT_CHANNEL, "inc-checkout", members=[ALICE, BOB, CAROL, PAGERBOT])
    slack.add_channel(QUIET_CHANNEL, "random", members=[ALICE, BOB, slack.bot_user_id])
    slack.add_channel(PRIVATE_CHANNEL, "inc-secret", is_private=True, members=[ALICE, BOB])
    await slack.start()
    yield slack
    await slack.stop()


class Rig(Harness):
    """The harness with this test suite's workspace filled in."""

    async def timeline(self, channel: str = INCIDENT_CHANNEL) -> list[Any]:
        return await super().timeline(channel)

    async def start_incident(self, title: str = "Checkout failing --sev 1", channel: str = INCIDENT_CHANNEL) -> dict:
        return await super().start_incident(channel, ALICE, title)


def settings_for(emulator: SlackEmulator, database_url: str, **overrides: Any) -> Settings:
    values = dict(
        bot_token=emulator.bot_token,
        signing_secret=SIGNING_SECRET,
        slack_api_url=emulator.api_url,
        database_url=database_url,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def rig(emulator: SlackEmulator, database_url: str) -> Any:
    harness = await Rig.start(emulator, database_url, signing_secret=SIGNING_SECRET)
    try:
        yield harness
    finally:
        await harness.stop()


# --- fuzz accounting -------------------------------------------------------------------------

FUZZ_COUNTS: Counter = Counter()
"""Examples the fuzz tests ran, by (kind, database backend); reported at the end of the session."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FUZZ_COUNTS:
        return
    terminalreporter.section("fuzzed signed payloads (examples run)")
    for (kind, backend), n in sorted(FUZZ_COUNTS.items()):
        terminalreporter.write_line(f"{kind:8} {backend:11} {n:6}")
    terminalreporter.write_line(f"{'total':20} {sum(FUZZ_COUNTS.values()):6}")


# --- the tracker emulators (tests/test_trackers*_e2e.py) ---------------------------------------

JIRA_SECRET, LINEAR_SECRET = "jira-webhook-secret", "linear-webhook-secret"


@pytest.fixture
async def jira(clock: Any) -> Any:
    server = JiraEmulator(clock)
    server.add_user("acct-bob", "bob@example.com", "Bob")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def linear(clock: Any) -> Any:
    server = LinearEmulator(clock)
    server.add_user("lin-bob", "bob@example.com")
    await server.start()
    yield server
    await server.stop()


def jira_settings(jira: JiraEmulator, **more: Any) -> dict[str, Any]:
    return dict(
        jira_url=jira.url,
        jira_email=jira.email,
        jira_api_token=jira.token,
        jira_project="OPS",
        jira_webhook_secret=JIRA_SECRET,
        **more,
    )


@pytest.fixture
async def jira_rig(emulator: Any, database_url: str, jira: JiraEmulator) -> Any:
    rig = await Rig.start(emulator, database_url, signing_secret=SIGNING_SECRET, **jira_settings(jira))
    try:
        yield rig
    finally:
        await rig.stop()
