"""`postmortem-bot run` (Socket Mode) end to end: the console script as a real process, its
slack_sdk SocketModeClient on a real websocket to the emulator, the real database.

The emulator plays Slack's side of Socket Mode: apps.connections.open hands out a ws:// URL,
the client gets `hello`, and each envelope a test sends waits for the bot's ack.  Every wait
is bounded, so a bot that hangs fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import SystemClock
from slack_emulator import SlackEmulator
from storage.db import create_engine, create_session_factory
from storage.models import Message, ProcessedEvent
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
CONNECT_TIMEOUT = 30.0  # start-up runs migrations first
WORK_TIMEOUT = 30.0  # listeners run after the ack
EXIT_TIMEOUT = 15.0
ACK_TIMEOUT = 10.0  # Slack itself waits 3 s; slack under CI load gets some slack


@pytest.fixture
def clock() -> SystemClock:
    """The bot here is a real process on the system clock: Slack's must read the same time."""
    return SystemClock()


# --- the bot as a process ---------------------------------------------------------------------


@dataclass
class BotProcess:
    process: asyncio.subprocess.Process
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr().splitlines()[-lines:])

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            return None

    async def kill(self) -> None:
        """SIGTERM, then SIGKILL if that is not enough; never waits unboundedly."""
        if self.process.returncode is not None:
            return
        self.process.terminate()
        if await self.wait_exit(5) is None:
            self.process.kill()
            await self.wait_exit(5)


def bot_env(**values: str) -> dict[str, str]:
    """This environment without Slack settings, database or proxies (the websocket must go
    straight to 127.0.0.1), plus `values`."""
    dropped = {"DATABASE_URL", "LOG_LEVEL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and k.upper() not in dropped}
    env.update(values)
    return env


async def spawn(env: dict[str, str], stderr_path: Path) -> BotProcess:
    with stderr_path.open("wb") as stderr:  # a file, not a pipe: a chatty bot cannot block on it
        process = await asyncio.create_subprocess_exec(
            SCRIPT, "run", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=stderr, stderr=stderr
        )
    return BotProcess(process, stderr_path)


@pytest.fixture
async def socket_bot(emulator: SlackEmulator, database_url: str, tmp_path: Path) -> AsyncIterator[BotProcess]:
    """`postmortem-bot run` connected to the emulator over Socket Mode."""
    env = bot_env(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_APP_TOKEN=emulator.app_token,
        SLACK_API_URL=emulator.api_url,
        DATABASE_URL=database_url,
    )
    bot = await spawn(env, tmp_path / "bot.stderr")
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while emulator.socket_connections == 0:
            if bot.process.returncode is not None:
                pytest.fail(f"postmortem-bot run exited with {bot.process.returncode} before connecting:\n{bot.tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"postmortem-bot run did not connect within {CONNECT_TIMEOUT}s:\n{bot.tail()}")
            await asyncio.sleep(0.05)
        await emulator.wait_for_socket_connection(timeout=1)
        yield bot
    finally:
        await bot.kill()  # before the emulator stops: the client would reconnect in a loop


async def eventually(
    check: Callable[[], Awaitable[Any]], what: str, bot: BotProcess, timeout: float = WORK_TIMEOUT
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if bot.process.returncode is not None:
            pytest.fail(f"the bot exited with {bot.process.returncode} while waiting for {what}:\n{bot.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout}s\n{bot.tail()}")
        await asyncio.sleep(0.05)


# --- what Slack sends -------------------------------------------------------------------------


def slash_command(emulator: SlackEmulator, channel: str, user: str, text: str) -> dict[str, Any]:
    """The payload of a slash command envelope: the fields Slack POSTs in HTTP mode (as
    SlackDriver.slash_command sends them), as a JSON object."""
    return {
        "token": "unused-verification-token",
        "team_id": emulator.team_id,
        "team_domain": emulator.team_domain,
        "channel_id": channel,
        "channel_name": emulator.channels[channel]["name"],
        "user_id": user,
        "user_name": emulator.users[user]["name"],
        "command": "/postmortem",
        "text": text,
        "api_app_id": emulator.app_id,
        "is_enterprise_install": "false",
        "response_url": emulator.new_response_url(),
        "trigger_id": emulator.issue_trigger_id(),
    }


def event_callback(emulator: SlackEmulator, event: dict[str, Any]) -> dict[str, Any]:
    """The payload of an events_api envelope: the event_callback SlackDriver.send_event builds."""
    return {
        "token": "unused-verification-token",
        "team_id": emulator.team_id,
        "api_app_id": emulator.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
        "event_time": int(float(event.get("event_ts") or time.time())),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": emulator.team_id,
                "user_id": emulator.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }


def human_message(emulator: SlackEmulator, channel: str, user: str, text: str) -> dict[str, Any]:
    """Post as a person in the emulator; returns the message event Slack would send."""
    message = emulator.post_user_message(channel, user, text)
    return dict(
        message, channel=channel, event_ts=message["ts"], channel_type="channel", client_msg_id=str(uuid.uuid4())
    )


# --- tests ------------------------------------------------------------------------------------


async def test_run_serves_commands_and_events_over_socket_mode(
    emulator: SlackEmulator, database_url: str, socket_bot: BotProcess
) -> None:
    assert emulator.calls_to("apps.connections.open")[-1]["ok"] is True

    # /postmortem start: acked at once with an empty body, then the card is posted and pinned.
    ack = await emulator.send_socket_envelope(
        "slash_commands",
        slash_command(emulator, INCIDENT_CHANNEL, ALICE, "start Socket outage --sev 2"),
        accepts_response_payload=True,
        timeout=ACK_TIMEOUT,
    )
    assert ack is not None and "payload" not in ack, ack

    async def pinned_card() -> dict[str, Any] | None:
        mine = [m for m in emulator.messages(INCIDENT_CHANNEL) if m.get("user") == emulator.bot_user_id]
        pins = emulator.pins(INCIDENT_CHANNEL)
        return next((m for m in mine if m["ts"] in pins), None)

    card = await eventually(pinned_card, "the incident card posted and pinned in the channel", socket_bot)
    blocks = json.dumps(card["blocks"])
    assert "Socket outage" in blocks and "SEV2" in blocks and f"<@{ALICE}>" in blocks
    assert emulator.bot_user_id in emulator.channels[INCIDENT_CHANNEL]["members"]

    # A person's message arrives as an events_api envelope and is captured in the database.
    event = human_message(emulator, INCIDENT_CHANNEL, BOB, "Rolled the socket gateway back")
    payload = event_callback(emulator, event)
    ack = await emulator.send_socket_envelope("events_api", payload, timeout=ACK_TIMEOUT)
    assert ack is not None and "payload" not in ack, ack

    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:

        async def captured() -> bool:
            async with sessions() as session:
                text = await session.scalar(
                    select(Message.text).where(Message.channel_id == INCIDENT_CHANNEL, Message.ts == event["ts"])
                )
                done = await session.scalar(
                    select(ProcessedEvent.event_id).where(ProcessedEvent.event_id == payload["event_id"])
                )
            return text == "Rolled the socket gateway back" and done is not None

        await eventually(captured, "the message event recorded in the database", socket_bot)
    finally:
        await engine.dispose()

    # /postmortem help: the answer travels back in the ack's payload.
    ack = await emulator.send_socket_envelope(
        "slash_commands",
        slash_command(emulator, INCIDENT_CHANNEL, ALICE, "help"),
        accepts_response_payload=True,
        timeout=ACK_TIMEOUT,
    )
    assert ack is not None and isinstance(ack.get("payload"), dict), ack
    assert ack["payload"].get("response_type") == "ephemeral"
    assert "/postmortem start" in ack["payload"]["text"]

    # SIGTERM: a clean exit that closes the websocket and never prints a token.
    socket_bot.process.send_signal(signal.SIGTERM)
    code = await socket_bot.wait_exit(EXIT_TIMEOUT)
    stderr = socket_bot.stderr()
    assert code == 0, f"exit code {code} after SIGTERM:\n{socket_bot.tail()}"
    assert emulator.bot_token not in stderr and emulator.app_token not in stderr
    assert "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 5
    while emulator.socket_connections and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert emulator.socket_connections == 0


async def test_run_with_a_bot_token_as_app_token_exits_with_a_clear_message(
    emulator: SlackEmulator, tmp_path: Path
) -> None:
    env = bot_env(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_APP_TOKEN=emulator.bot_token,
        SLACK_API_URL=emulator.api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'postmortem.db'}",
    )
    bot = await spawn(env, tmp_path / "bot.stderr")
    try:
        code = await bot.wait_exit(EXIT_TIMEOUT)
    finally:
        await bot.kill()
    stderr = bot.stderr()
    assert code is not None, (
        f"still running {EXIT_TIMEOUT}s after start, after {len(emulator.calls_to('apps.connections.open'))} "
        f"refused apps.connections.open calls:\n{bot.tail()}"
    )
    assert code > 0, f"exit code {code}:\n{bot.tail()}"
    assert "SLACK_APP_TOKEN" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert emulator.bot_token not in stderr and emulator.app_token not in stderr
    assert emulator.socket_connections == 0
