"""`postmortem-bot demo`: the bot on SQLite against the Slack emulator, playing a short incident
from declaration to the shared post-mortem.

For a newcomer without a Slack workspace: everything below goes through the same signed HTTP
endpoint and the same Web API calls as production; only Slack itself is emulated.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from bot.clock import ShiftedClock
from slack_emulator import SlackEmulator
from slack_emulator.harness import Harness
from slack_emulator.transcript import readable, render

CHANNEL = "C0DEMOINC1"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"
ZONES = {ALICE: "America/New_York", BOB: "Europe/Paris", CAROL: "Asia/Tokyo"}

DEMO_DAY = datetime(2026, 3, 10, tzinfo=UTC)
"""The incident's day, a Tuesday. The demo plays on a clock that the bot and the emulated
Slack share, set forward step by step to when each thing happens (times in UTC, as people
in an incident channel write them)."""


def at(hour: int, minute: int, days: int = 0) -> datetime:
    return DEMO_DAY + timedelta(days=days, hours=hour, minutes=minute)


class Transcript:
    def __init__(self, emulator: SlackEmulator, clock: ShiftedClock, out: TextIO) -> None:
        self.emulator = emulator
        self.clock = clock
        self.out = out
        self.bold = out.isatty()

    def name(self, user_id: str) -> str:
        return str(self.emulator.users.get(user_id, {}).get("name", user_id))

    def channel_name(self, channel_id: str) -> str:
        return str(self.emulator.channels.get(channel_id, {}).get("name", channel_id))

    def readable(self, text: str) -> str:
        return readable(text, self.name, self.channel_name, bold=self.bold)

    def say(self, who: str, what: str) -> None:
        self.out.write(f"\n{self.clock.now():%H:%M} {self.name(who)}> {what}\n")

    def narrate(self, what: str) -> None:
        self.out.write(f"\n{self.clock.now():%H:%M} {what}\n")

    def show(self, heading: str, message: dict[str, Any]) -> None:
        body = render(message, self.name, self.channel_name, bold=self.bold).replace("\n", "\n    ")
        self.out.write(f"  [{heading}]\n    {body}\n")


async def run_demo(database_url: str | None = None, out: TextIO = sys.stdout) -> int:
    workdir = tempfile.mkdtemp(prefix="postmortem-demo-")
    database_url = database_url or f"sqlite+aiosqlite:///{Path(workdir) / 'demo.db'}"
    clock = ShiftedClock(at(14, 4))
    emulator = SlackEmulator(clock=clock)
    emulator.add_user(ALICE, "alice", tz=ZONES[ALICE], real_name="Alice (incident commander)")
    emulator.add_user(BOB, "bob", tz=ZONES[BOB])
    emulator.add_user(CAROL, "carol", tz=ZONES[CAROL])
    emulator.add_channel(CHANNEL, "inc-checkout", members=[ALICE, BOB, CAROL])
    await emulator.start()
    harness = await Harness.start(emulator, database_url)
    log = Transcript(emulator, clock, out)
    driver = harness.driver
    out.write(
        f"postmortem-bot demo: Slack emulated at {emulator.api_url}, database {database_url}\n"
        f"An incident on {DEMO_DAY:%A %d %B %Y}, played on a clock the bot and Slack share; times in UTC.\n"
    )
    try:
        log.say(ALICE, "/postmortem start Checkout failing --sev 1")
        card = await harness.start_incident(CHANNEL, ALICE, "Checkout failing --sev 1")
        log.show(f"#inc-checkout, pinned: {emulator.pins(CHANNEL) == [card['ts']]}", card)

        clock.set(at(14, 5))
        log.say(BOB, "Checkout error rate is at 40% since 14:02")
        symptom, _ = await driver.post_message(CHANNEL, BOB, "Checkout error rate is at 40% since 14:02")
        clock.set(at(14, 6))
        log.say(CAROL, "Deploy 4512 went out at 14:00")
        deploy, _ = await driver.post_message(CHANNEL, CAROL, "Deploy 4512 went out at 14:00")
        clock.set(at(14, 9))
        log.say(ALICE, "(in thread) Rolling back 4512 now")
        rollback, delivery = await driver.post_message(CHANNEL, ALICE, "Rolling back 4512 now", thread_ts=deploy["ts"])
        await harness.processed(delivery.event_id)

        clock.set(at(14, 10))
        for who, message in ((ALICE, symptom), (BOB, deploy), (CAROL, rollback)):
            log.narrate(f'{log.name(who)} reacts :pushpin: to "{message["text"]}"')
            await harness.processed((await driver.react(CHANNEL, message["ts"], who)).event_id)

        clock.set(at(14, 12))
        log.say(CAROL, "(edits) Deploy 4512 (cache flag flip) went out at 14:00")
        await harness.processed(
            (
                await driver.edit_message(CHANNEL, deploy["ts"], "Deploy 4512 (cache flag flip) went out at 14:00")
            ).event_id
        )

        clock.set(at(14, 21))
        answers = len(emulator.responses())
        log.say(BOB, "/postmortem note Rollback complete, error rate back to 0.1%")
        await driver.slash_command(CHANNEL, BOB, "note Rollback complete, error rate back to 0.1%")
        log.show("only bob sees", (await harness.responses(answers + 1))[-1])

        clock.set(at(14, 24))
        log.say(ALICE, "/postmortem timeline")
        await driver.slash_command(CHANNEL, ALICE, "timeline")
        log.show("only alice sees", (await harness.responses(answers + 2))[-1])

        clock.set(at(14, 30))
        view = await resolve(harness, log)
        sent = await sweeps(harness, log, until=at(16, 39))  # while alice writes the post-mortem
        clock.set(at(16, 40))
        await write_postmortem(harness, log, view)
        sent += await sweeps(harness, log, until=at(23, 59, days=1))
    finally:
        await harness.stop()
        await emulator.stop()
    out.write(
        f"\nShown: one incident in #inc-checkout, declared {at(14, 4):%H:%M} and resolved {at(14, 30):%H:%M} UTC;"
        " its capture (messages, a thread reply, pushpins, an edit, a note), the post-mortem form and its"
        f" document, then a day and a half of follow-through: {sent} nudges, each inside its recipient's"
        f" working hours, one answered from a DM. Database: {database_url}\n"
    )
    return 0


async def resolve(harness: Harness, log: Transcript) -> dict[str, Any]:
    """Resolve: the post-mortem form opens; returns it."""
    emulator, out = harness.emulator, log.out
    log.say(ALICE, "/postmortem resolve")
    view = await harness.open_postmortem(CHANNEL, ALICE)
    context = next((b for b in view["blocks"] if b["type"] == "context"), {"elements": [{"text": ""}]})
    out.write(f'  [a modal opens for alice: "{view["title"]["text"]}", {len(view["blocks"])} blocks]\n')
    out.write(f"    {log.readable(context['elements'][0]['text'])}\n")
    incident = await harness.bot.services.timeline.current_incident(emulator.team_id, CHANNEL)
    card = emulator.message(CHANNEL, incident.card_ts) if incident is not None and incident.card_ts else None
    if card is not None:
        log.show("the pinned card now", card)
    return view


async def write_postmortem(harness: Harness, log: Transcript, view: dict[str, Any]) -> None:
    """Fill in the form, submit it, and print the summary and the document."""
    emulator, driver, out = harness.emulator, harness.driver, log.out
    future = (log.clock.now() + timedelta(days=14)).date().isoformat()
    log.narrate("alice has written the post-mortem, with two action items, and submits it")
    edits = {
        "pm_summary": "Checkout failed for most customers after deploy 4512 flipped the cache flag.",
        "pm_users_affected": "about 40% of checkout attempts",
        "pm_sla_breached": "yes",
        "pm_detection_how": "Error-rate alert on checkout, then reports in #support.",
        "pm_root_cause": "Deploy 4512 turned off the cache's stampede protection; the database saturated.",
        "pm_why_1": "The database saturated because every request missed the cache at once.",
        "pm_why_2": "The stampede protection flag was off in the new config.",
        "pm_why_3": "The config schema has no default for that flag, so a missing value meant off.",
        "pm_cause_category": "configuration",
        "pm_went_well": "The rollback took four minutes.",
        "pm_went_wrong": "The p99 latency alert fired ten minutes after customers noticed.",
        "pm_lessons": "Config flags that protect capacity need safe defaults and a test.",
    }
    view = await harness.add_action_row(view, ALICE, edits)
    view = await harness.add_action_row(view, ALICE)
    first, second = harness.row_keys(view)[-2:]
    edits.update(
        harness.row_edits(first, "Add a p99 latency alert on checkout at 800 ms for 5 min", BOB, future, priority="P1")
    )
    edits.update(
        harness.row_edits(
            second, "Set a default for the stampede flag in the config schema, checked in CI", CAROL, future
        )
    )
    before = len(harness.bot_messages(CHANNEL))
    delivery = await driver.submit_view(view, ALICE, edits)
    out.write(f"  [submitted: HTTP {delivery.status}, the modal closes]\n")

    async def shared() -> dict[str, Any] | None:
        posted = [m for m in harness.bot_messages(CHANNEL)[before:] if "Post-mortem submitted" in m.get("text", "")]
        return posted[-1] if posted and emulator.uploaded_files() else None

    summary = await harness.eventually(shared)
    log.show("#inc-checkout", summary)
    receipt = emulator.messages(emulator.open_dm(ALICE))
    if receipt:
        log.show("DM to alice", receipt[-1])
    document = emulator.uploaded_files()[-1]
    out.write(f"\n--- {document['filename']}, attached in the summary's thread ---\n\n{document['content'].decode()}")


async def sweeps(harness: Harness, log: Transcript, until: datetime) -> int:
    """The minute's sweeps, from now to `until`, shown where they send something (the
    commander's review-meeting nudges, each owner's first reminder in their working hours);
    bob answers his with a button. Returns how many nudges were sent."""
    from storage.nudges import next_pending_nudge

    emulator, out = harness.emulator, log.out
    sent = 0
    while True:
        async with harness.bot.services.timeline.sessions() as session:
            due = await next_pending_nudge(session)
        if due is None or due.not_before > until:
            return sent
        log.clock.set(max(due.not_before, log.clock.now()))
        now = log.clock.now()
        local = now.astimezone(ZoneInfo(ZONES.get(due.recipient, "UTC")))
        out.write(
            f"\n--- {now:%A %H:%M} UTC, {local:%H:%M} for {log.name(due.recipient)}"
            f" ({local.tzname()}): the minute's sweep ---\n"
        )
        report = await harness.bot.services.nudges.sweep(now)
        for line in report.lines():
            out.write(f"  {line}\n")
        sent += len(report.sent)
        if not report.sent:
            continue
        dm = [m for m in emulator.messages_in_dm(due.recipient) if m.get("user") == emulator.bot_user_id][-1]
        log.show(f"DM to {log.name(due.recipient)}", dm)
        if due.recipient == BOB and due.kind == "action_item":
            await answer_in_progress(harness, log, dm)


async def answer_in_progress(harness: Harness, log: Transcript, dm: dict[str, Any]) -> None:
    emulator = harness.emulator
    log.clock.advance(timedelta(minutes=7))
    log.narrate("bob presses [In progress]")
    await harness.driver.click_message_button(emulator.open_dm(BOB), dm["ts"], BOB, "item_in_progress")

    async def updated() -> dict[str, Any] | None:
        current = emulator.message(emulator.open_dm(BOB), dm["ts"])
        return current if current and current.get("blocks") != dm.get("blocks") else None

    log.show("bob's DM, updated in place", await harness.eventually(updated))

    async def replied() -> dict[str, Any] | None:
        replies = [m for m in harness.bot_messages(CHANNEL) if m.get("thread_ts") and "started on" in m.get("text", "")]
        return replies[-1] if replies else None

    log.show("#inc-checkout, in the summary's thread", await harness.eventually(replied))
