"""The batched sweep (issue 11): its metrics move as it works, scraped from the rig's bot
over GET /metrics; and a batch claim keeps SKIP LOCKED's promise on PostgreSQL (a second
sweeper's claim skips the rows the first holds, neither waits)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.nudges import item_subject
from storage.db import create_engine, create_session_factory
from storage.models import Nudge
from storage.nudges import claim_due_nudges, put_nudge
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, TEST_START, Rig


async def scrape(rig: Rig) -> str:
    url = rig.driver.events_url.removesuffix("/slack/events") + "/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.text()


def value(metrics: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def add_item(rig: Rig, owner: str, title: str) -> None:
    due = (rig.today() + timedelta(days=20)).isoformat()
    before = len(rig.emulator.responses())
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{owner}|x> {due} {title}")
    assert "Action item added" in (await rig.responses(before + 1))[-1]["text"]


async def test_a_sweep_moves_its_metrics(rig: Rig) -> None:
    await rig.start_incident()
    await add_item(rig, BOB, "Add a p99 alert on checkout at 800 ms")
    await add_item(rig, CAROL, "Add a runbook link to the checkout alert")

    async def two_pending() -> list[Nudge] | None:
        async with rig.bot.services.timeline.sessions() as session:
            rows = list(await session.scalars(select(Nudge).where(Nudge.status == "pending").order_by(Nudge.id)))
        return rows if len(rows) == 2 else None

    bobs, carols = await rig.eventually(two_pending)
    at = max(bobs.not_before, carols.not_before)
    # Carol's is held by another sweeper that is still within its lease: due, not sent yet.
    async with rig.bot.services.timeline.sessions.begin() as session:
        held = await session.get(Nudge, carols.id)
        held.status, held.claimed_by, held.claimed_at = "claimed", "another-sweeper", at
    before = await scrape(rig)

    report = await rig.bot.services.nudges.sweep(now=at)

    assert report.sent == [bobs.key]
    after = await scrape(rig)
    sent = 'postmortem_nudges_sent_total{kind="action_item"}'
    assert value(after, sent) == value(before, sent) + 1
    assert value(after, "postmortem_sweep_seconds_count") == value(before, "postmortem_sweep_seconds_count") + 1
    assert value(after, "postmortem_sweep_due_backlog") == 1, "Carol's claimed nudge is due and unsent"

    await rig.bot.services.nudges.sweep(now=at + timedelta(minutes=10))  # past the lease: recovered and sent
    assert value(await scrape(rig), "postmortem_sweep_due_backlog") == 0


async def test_a_batch_claim_skips_the_rows_another_sweeper_holds(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrent sweepers are a PostgreSQL (SKIP LOCKED) deployment")
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions.begin() as session:
            for n in range(5):
                await put_nudge(
                    session,
                    team_id="T0EMULATOR",
                    kind="action_item",
                    subject=item_subject(n + 1),
                    slot="assigned",
                    recipient=BOB,
                    not_before=TEST_START + timedelta(minutes=n),
                    now=TEST_START,
                )
        at = TEST_START + timedelta(hours=1)
        async with sessions.begin() as first:
            held = await claim_due_nudges(first, at, 3, "first")  # locked until this transaction ends
            # The second sweeper does not wait for the first: it takes what is left, at once.
            async with sessions.begin() as second:
                rest = await asyncio.wait_for(claim_due_nudges(second, at, 10, "second"), 10)
        assert [n.subject for n in held] == [item_subject(n) for n in (1, 2, 3)], "first due first"
        assert [n.subject for n in rest] == [item_subject(n) for n in (4, 5)]
        async with sessions() as session:
            rows = list(await session.scalars(select(Nudge).order_by(Nudge.id)))
        assert [(r.status, r.claimed_by, r.attempts) for r in rows] == [("claimed", "first", 1)] * 3 + [
            ("claimed", "second", 1)
        ] * 2
    finally:
        await engine.dispose()
