"""Tickets in Jira and Linear end to end: the real bot on its real endpoints (the form through
the signed driver, webhooks on /trackers/*, `postmortem-bot sweep`), against the tracker
emulators over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bot.postmortem_document import render
from bot.postmortems import load_document
from bot.trackers.base import marker_of
from bot.trackers.linear import NAMESPACE
from storage.models import ActionItem, Incident, Nudge, TicketJob
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, JIRA_SECRET, LINEAR_SECRET, SIGNING_SECRET, Rig, jira_settings
from tests.test_postmortem_e2e import submit_clean
from tracker_emulator import JiraEmulator, LinearEmulator

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
BOB_TITLE = "Add a p99 latency alert on checkout at 800 ms for 5 min"


async def items(rig: Rig) -> list[ActionItem]:
    async with rig.bot.services.timeline.sessions() as session:
        return list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))


async def bob_item(rig: Rig) -> ActionItem:
    return next(i for i in await items(rig) if i.owner_id == BOB)


def bot_base(rig: Rig) -> str:
    return rig.driver.events_url.removesuffix("/slack/events")


async def submitted_with_ticket(rig: Rig) -> ActionItem:
    await rig.start_incident("Checkout failing --sev 2")
    await submit_clean(rig)

    async def ticketed() -> ActionItem | None:
        item = await bob_item(rig)
        return item if item.ticket_key else None

    return await rig.eventually(ticketed)


async def test_a_submission_makes_one_ticket_per_item_shown_everywhere_and_never_twice(
    jira_rig: Rig, jira: JiraEmulator
) -> None:
    rig = jira_rig
    item = await submitted_with_ticket(rig)
    (issue,) = jira.issues.values()  # Carol's item has a link typed in the form: no second ticket
    assert (item.ticket_key, item.ticket_tracker, item.ticket_url) == ("OPS-1", "jira", f"{jira.url}/browse/OPS-1")
    assert issue.summary == BOB_TITLE and issue.assignee == "acct-bob" and issue.duedate == item.due.isoformat()
    assert set(issue.labels) == {"postmortem", marker_of(rig.emulator.team_id, item.id)} and issue.priority == "Highest"
    description = json.dumps(issue.description)
    assert "Checkout failing" in description and "Root cause: A config change" in description
    assert rig.emulator.team_id in description or "archives" in description, "links back to the post-mortem"
    assert jira.violations == []

    async def shared() -> dict | None:
        return next(
            (m for m in rig.bot_messages(INCIDENT_CHANNEL) if "Post-mortem submitted" in m.get("text", "")), None
        )

    summary = await rig.eventually(shared)
    assert f"<{jira.url}/browse/OPS-1|OPS-1>" in json.dumps(summary["blocks"])
    async with rig.bot.services.timeline.sessions() as session:
        incident = await session.scalar(select(Incident))
    data = json.loads(render(await load_document(rig.bot.services.timeline.sessions, incident, ("pushpin",)), "json"))
    tickets = [a["ticket"] for a in data["action_items"]]
    assert tickets == [
        {"key": "OPS-1", "url": f"{jira.url}/browse/OPS-1"},
        {"key": None, "url": "https://tracker.example.com/OPS-42"},
    ]
    assert "OPS-1" in render(await load_document(rig.bot.services.timeline.sessions, incident, ("pushpin",)), "md")

    # Resubmitted: still one ticket.
    view = await rig.open_postmortem(INCIDENT_CHANNEL, ALICE)
    assert (await rig.driver.submit_view(view, ALICE)).status == 200
    await rig.bot.services.trackers.sync(rig.clock.now() + timedelta(minutes=5))
    assert len(jira.issues) == 1


async def test_a_5xx_after_the_create_and_a_429_still_make_exactly_one_ticket(
    jira_rig: Rig, jira: JiraEmulator
) -> None:
    rig = jira_rig
    jira.fail_next("GET /rest/api/3/search/jql", 429, retry_after=120)  # the first marker lookup
    await rig.start_incident("Checkout failing --sev 2")
    await submit_clean(rig)
    item = await bob_item(rig)

    async def tried() -> TicketJob | None:
        async with rig.bot.services.timeline.sessions() as session:
            job = await session.scalar(select(TicketJob).where(TicketJob.item_id == item.id))
        return job if job is not None and job.attempts and job.status == "pending" else None

    job = await rig.eventually(tried)
    assert (await bob_item(rig)).ticket_key is None and jira.issues == {}
    assert job.status == "pending" and job.not_before >= rig.clock.now() + timedelta(seconds=100), "Retry-After kept"

    jira.fail_next("POST /rest/api/3/issue", 502, after=True)  # made, but the answer is lost
    lines = await rig.bot.services.trackers.sync(rig.clock.now() + timedelta(minutes=3))
    assert any(line.startswith("retry ticket create") for line in lines), lines
    assert len(jira.issues) == 1 and (await bob_item(rig)).ticket_key is None
    lines = await rig.bot.services.trackers.sync(rig.clock.now() + timedelta(minutes=10))
    assert f"found ticket create action_item:{item.id}" in lines, lines
    assert len(jira.issues) == 1 and (await bob_item(rig)).ticket_key == "OPS-1"


async def test_done_in_jira_by_webhook_and_by_the_sweeps_pull_and_done_in_slack_moves_the_ticket(
    jira_rig: Rig, jira: JiraEmulator
) -> None:
    rig = jira_rig
    item = await submitted_with_ticket(rig)
    url = bot_base(rig) + "/trackers/jira"
    jira.move("OPS-1", "done")
    assert (await jira.send_webhook(url, "wrong-secret", "OPS-1"))[0] == 401
    await asyncio.sleep(0.2)
    assert (await bob_item(rig)).status == "open", "a bad signature changes nothing"
    status, answer = await jira.send_webhook(url, JIRA_SECRET, "OPS-1")
    assert status == 200, answer

    async def done() -> bool:
        return (await bob_item(rig)).status == "done"

    await rig.eventually(done)

    async def reminders_stopped() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            pending = await session.scalar(
                select(Nudge).where(Nudge.subject == f"action_item:{item.id}", Nudge.status == "pending")
            )
        return pending is None

    await rig.eventually(reminders_stopped)

    # Reopened in Jira, the webhook lost: the sweep's pull (a real `postmortem-bot sweep`) finds it.
    jira.move("OPS-1", "new")
    await sweep(rig, jira)
    assert (await bob_item(rig)).status == "open"
    # A due date moved in Jira follows here.
    later = item.due + timedelta(days=3)
    jira.edit("OPS-1", duedate=later.isoformat())
    await rig.bot.services.trackers.sync(rig.clock.now() + timedelta(seconds=1))
    assert (await bob_item(rig)).due == later
    # Signed but malformed: 400 with a reason, never a 5xx.
    raw = b"{not json"
    signature = "sha256=" + hmac.new(JIRA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=raw, headers={"X-Hub-Signature": signature}) as response:
            assert response.status == 400 and "JSON" in (await response.json())["reason"]

    # Done in Slack, from the owner's DM: the ticket moves to a done status.
    await rig.bot.services.nudges.sweep(rig.clock.now() + timedelta(days=1))
    dm = await rig.eventually(lambda: _dm_of(rig, item.id))
    click = await rig.driver.click_message_button(dm["channel"], dm["ts"], BOB, "item_done")
    assert click.status == 200

    async def moved() -> bool:
        return jira.issue("OPS-1").status == "10002"

    await rig.eventually(moved)
    assert (await bob_item(rig)).status == "done"


async def _dm_of(rig: Rig, item_id: int) -> dict | None:
    row = next(i for i in await items(rig) if i.id == item_id)
    return {"channel": row.dm_channel, "ts": row.dm_ts} if row.dm_ts else None


def sweep_env(rig: Rig, jira: JiraEmulator) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "JIRA_", "LINEAR_"))} | {
        "SLACK_BOT_TOKEN": rig.emulator.bot_token,
        "SLACK_API_URL": rig.emulator.api_url,
        "DATABASE_URL": rig.url,
        "JIRA_URL": jira.url,
        "JIRA_EMAIL": jira.email,
        "JIRA_API_TOKEN": jira.token,
        "JIRA_PROJECT": "OPS",
    }


async def sweep(rig: Rig, jira: JiraEmulator) -> list[str]:
    env = sweep_env(rig, jira)
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "sweep",
        "--at",
        rig.clock.now().isoformat(),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode().splitlines()


async def test_a_refused_token_is_told_to_the_commander_once_and_nothing_else_stops(
    emulator: Any, database_url: str, jira: JiraEmulator
) -> None:
    rig = await Rig.start(
        emulator, database_url, signing_secret=SIGNING_SECRET, **(jira_settings(jira) | {"jira_api_token": "wrong"})
    )
    try:
        await rig.start_incident("Checkout failing --sev 2")
        await submit_clean(rig)
        await rig.bot.services.action_items.plan_reminders([])  # run the owed work once more
        told = [m for m in rig.emulator.messages_in_dm(ALICE) if "credentials" in m.get("text", "")]
        assert len(told) == 1 and "JIRA_API_TOKEN" in told[0]["text"], told
        assert jira.issues == {}

        async def shared() -> bool:
            return any("Post-mortem submitted" in m.get("text", "") for m in rig.bot_messages(INCIDENT_CHANNEL))

        await rig.eventually(shared)
    finally:
        await rig.stop()


async def test_the_commander_chooses_the_tracker_privately_and_the_card_shows_it(jira_rig: Rig) -> None:
    rig = jira_rig
    card = await rig.start_incident()
    before = len(rig.emulator.responses())
    await rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "tracker jira OPS")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "tracker linear ENG")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "tracker jira SRE")
    answers = [r["text"] for r in (await rig.responses(before + 3))[before:]]
    assert "Only the incident commander" in answers[0]
    assert "Linear is not set up" in answers[1]
    assert "tickets in Jira SRE" in answers[2]
    assert all(r.get("response_type", "ephemeral") == "ephemeral" for r in rig.emulator.responses()[before:])

    async def shown() -> bool:
        return "Jira SRE" in json.dumps(rig.emulator.message(INCIDENT_CHANNEL, card["ts"])["blocks"])

    await rig.eventually(shown)


async def test_linear_tickets_both_ways_and_stale_or_unsigned_webhooks_refused(
    emulator: Any, database_url: str, linear: LinearEmulator
) -> None:
    rig = await Rig.start(
        emulator,
        database_url,
        signing_secret=SIGNING_SECRET,
        linear_api_key=linear.api_key,
        linear_team="ENG",
        linear_api_url=linear.url + "/graphql",
        linear_webhook_secret=LINEAR_SECRET,
    )
    try:
        item = await submitted_with_ticket(rig)
        (issue,) = linear.tickets.values()
        assert issue.id == str(uuid.uuid5(NAMESPACE, marker_of(rig.emulator.team_id, item.id)))
        assert (item.ticket_key, issue.assignee, issue.due, issue.priority) == (
            "ENG-1",
            "lin-bob",
            item.due.isoformat(),
            1,
        )
        url = bot_base(rig) + "/trackers/linear"
        linear.move("ENG-1", "canceled")
        stale = rig.clock.now() - timedelta(minutes=2)
        assert (await linear.send_webhook(url, LINEAR_SECRET, "ENG-1", sent_at=stale))[0] == 401
        assert (await linear.send_webhook(url, "not-the-secret", "ENG-1"))[0] == 401
        assert (await bob_item(rig)).status == "open"
        assert (await linear.send_webhook(url, LINEAR_SECRET, "ENG-1"))[0] == 200

        async def wont_do() -> bool:
            return (await bob_item(rig)).status == "wont_do"

        await rig.eventually(wont_do)
        assert "Linear" in ((await bob_item(rig)).status_note or "")
        # Reopened in Linear, no webhook: the sweep's pull finds it.
        linear.move("ENG-1", "started")
        await rig.bot.services.trackers.sync(rig.clock.now() + timedelta(seconds=1))
        assert (await bob_item(rig)).status == "open"
    finally:
        await rig.stop()


async def test_a_sweeper_killed_between_the_create_and_storing_its_key_leaves_one_ticket(
    jira_rig: Rig, jira: JiraEmulator
) -> None:
    rig = jira_rig
    jira.fail_next("GET /rest/api/3/search/jql", 503)  # the submission's own attempt fails first
    await rig.start_incident("Checkout failing --sev 2")
    await submit_clean(rig)
    item = await bob_item(rig)

    async def put_back() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            job = await session.scalar(select(TicketJob).where(TicketJob.item_id == item.id))
        return job is not None and job.attempts == 1 and job.status == "pending"

    await rig.eventually(put_back)
    # Jira makes the issue, then stalls its answer; the sweeper is SIGKILLed meanwhile.
    jira.fail_next("POST /rest/api/3/issue", 500, after=True, delay=60)
    at = rig.clock.now() + timedelta(minutes=2)
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "sweep",
        "--at",
        at.isoformat(),
        env=sweep_env(rig, jira),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def created() -> bool:
        return len(jira.issues) == 1

    await rig.eventually(created, timeout=60)
    process.kill()
    await process.wait()
    assert (await bob_item(rig)).ticket_key is None, "killed before it stored the key"

    # Inside the claim's lease nothing is retried; after it, the marker finds the ticket.
    env = sweep_env(rig, jira)
    for minutes, expected in ((4, None), (10, "OPS-1")):
        again = await asyncio.create_subprocess_exec(
            SCRIPT,
            "sweep",
            "--at",
            (at + timedelta(minutes=minutes)).isoformat(),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(again.communicate(), 60)
        assert again.returncode == 0, err.decode()[-2000:]
        assert (await bob_item(rig)).ticket_key == expected, out.decode()
    assert len(jira.issues) == 1
