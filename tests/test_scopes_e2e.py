"""The bot under the scopes a real workspace grants it: exactly manifest.yml's bot scopes.

The emulator answers ``missing_scope`` for any method those scopes do not cover, so a flow
that needs a scope the manifest leaves out fails here as it would in Slack.  The case that
showed it: recovering a reminder whose sweeper died after sending it reads the owner's DM
(conversations.history on a DM needs ``im:history``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import FixedClock, ShiftedClock
from bot.nudges import NUDGE_EVENT_TYPE
from slack_emulator import SlackEmulator
from slack_emulator.scopes import manifest_bot_scopes
from storage.models import Nudge
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, SIGNING_SECRET, Rig

# A Tuesday afternoon: inside BOB's working hours in Paris (15:00 local).
AT = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
DUE = date(2026, 3, 18)


@pytest.fixture
async def fixed_rig(emulator: SlackEmulator, database_url: str) -> AsyncIterator[Rig]:
    """The bot on a clock that reads AT, and Slack's message ts on the same instant."""
    emulator.clock = ShiftedClock(AT)
    harness = await Rig.start(emulator, database_url, signing_secret=SIGNING_SECRET, clock=FixedClock(AT))
    try:
        yield harness
    finally:
        await harness.stop()


async def crashed_after_sending(rig: Rig) -> Nudge:
    """An action item for BOB whose assignment DM a sweeper sent, then died before marking
    it sent: the DM is in Slack (with the nudge's key in its metadata), the row is claimed."""
    await rig.start_incident()
    before = len(rig.emulator.responses())
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {DUE} Add a p99 alert on checkout")
    answer = (await rig.responses(before + 1))[-1]
    assert "Action item added" in answer["text"], answer["text"]
    async with rig.bot.services.timeline.sessions.begin() as session:
        nudge = (
            await session.scalars(select(Nudge).where(Nudge.kind == "action_item", Nudge.status == "pending"))
        ).one()
        nudge.status, nudge.claimed_by, nudge.claimed_at = "claimed", "dead-sweeper", AT - timedelta(minutes=10)
    await rig.bot.client.chat_postMessage(
        channel=BOB,
        text="(sent before the crash)",
        metadata={"event_type": NUDGE_EVENT_TYPE, "event_payload": {"key": nudge.key}},
    )
    return nudge


def dms_to(rig: Rig, user: str) -> list[dict[str, Any]]:
    return [m for m in rig.emulator.messages_in_dm(user) if m.get("user") == rig.emulator.bot_user_id]


async def test_without_im_history_recovery_cannot_read_the_dm_and_sends_twice(fixed_rig: Rig) -> None:
    """The defect the manifest had: no im:history, so recovery's conversations.history on the
    owner's DM answers missing_scope, and the reminder goes out a second time."""
    fixed_rig.emulator.scopes = tuple(s for s in manifest_bot_scopes() if s != "im:history")
    nudge = await crashed_after_sending(fixed_rig)
    report = await fixed_rig.bot.services.nudges.sweep(AT)
    refused = [c for c in fixed_rig.emulator.calls_to("conversations.history") if c["error"] == "missing_scope"]
    assert refused and refused[0]["args"]["channel"].startswith("D")
    assert report.recovered == []
    assert len(dms_to(fixed_rig, BOB)) == 2, f"sent twice: {report.lines()}"
    assert nudge.key in report.sent


async def test_with_the_manifests_scopes_recovery_finds_the_dm_and_sends_nothing_twice(fixed_rig: Rig) -> None:
    nudge = await crashed_after_sending(fixed_rig)
    report = await fixed_rig.bot.services.nudges.sweep(AT)
    assert report.recovered == [nudge.key] and report.sent == []
    assert len(dms_to(fixed_rig, BOB)) == 1
    assert all(c["error"] != "missing_scope" for c in fixed_rig.emulator.calls)


@pytest.mark.parametrize("where", ["dm", "group_dm"])
async def test_a_command_in_a_dm_or_group_dm_is_told_incidents_live_in_channels(rig: Rig, where: str) -> None:
    """Under the manifest's scopes the bot cannot read DMs' conversations.info (im:read,
    mpim:read): it says where incidents live instead of "missing_scope, try again"."""
    if where == "dm":
        channel = rig.emulator.open_dm(ALICE)
    else:
        # Made with a token that may (mpim:write): the bot's own may not.
        rig.emulator.scopes = (*rig.emulator.scopes, "mpim:write")
        channel = (await rig.bot.client.conversations_open(users=f"{ALICE},{BOB}"))["channel"]["id"]
        rig.emulator.scopes = tuple(s for s in rig.emulator.scopes if s != "mpim:write")
    for command in ("start Checkout failing", "timeline"):
        before = len(rig.emulator.responses())
        delivery = await rig.driver.slash_command(channel, ALICE, command)
        assert delivery.status == 200
        answer = (await rig.responses(before + 1))[-1]
        assert "Incidents live in channels" in answer["text"], answer["text"]
    assert await rig.bot.services.timeline.current_incident(rig.emulator.team_id, channel) is None
