"""`postmortem-bot demo`: the bot on SQLite against the Slack emulator, playing a short incident
from declaration to the shared post-mortem.

For a newcomer without a Slack workspace: everything below goes through the same signed HTTP
endpoint and the same Web API calls as production; only Slack itself is emulated.
"""

from __future__ import annotations

import sys
from datetime import timedelta
import tempfile
from pathlib import Path
from typing import TextIO

from bot.emulator.harness import Harness
from bot.emulator.server import SlackEmulator
from bot.emulator.transcript import readable, render

CHANNEL = "C0DEMOINC1"
ALICE, BOB, CAROL = "U0ALICE001", "U0BOB00001", "U0CAROL001"


class Transcript:
    def __init__(self, emulator: SlackEmulator, out: TextIO) -> None:
        self.emulator = emulator
        self.out = out

    def name(self, user_id: str) -> str:
        return str(self.emulator.users.get(user_id, {}).get("name", user_id))

    def say(self, who: str, what: str) -> None:
        self.out.write(f"\n{self.name(who)}> {what}\n")

    def show(self, heading: str, message: dict) -> None:
        body = render(message, self.name).replace("\n", "\n    ")
        self.out.write(f"  [{heading}]\n    {body}\n")


async def run_demo(database_url: str | None = None, out: TextIO = sys.stdout) -> int:
    workdir = tempfile.mkdtemp(prefix="postmortem-demo-")
    database_url = database_url or f"sqlite+aiosqlite:///{Path(workdir) / 'demo.db'}"
    emulator = SlackEmulator()
    emulator.add_user(ALICE, "alice", tz="America/New_York", real_name="Alice (incident commander)")
    emulator.add_user(BOB, "bob", tz="Europe/Paris")
    emulator.add_user(CAROL, "carol", tz="Asia/Tokyo")
    emulator.add_channel(CHANNEL, "inc-checkout", members=[ALICE, BOB, CAROL])
    await emulator.start()
    harness = await Harness.start(emulator, database_url)
    log = Transcript(emulator, out)
    driver = harness.driver
    out.write(f"postmortem-bot demo: Slack emulated at {emulator.api_url}, database {database_url}\n")
    try:
        log.say(ALICE, "/postmortem start Checkout failing --sev 1")
        card = await harness.start_incident(CHANNEL, ALICE, "Checkout failing --sev 1")
        log.show(f"#inc-checkout, pinned: {emulator.pins(CHANNEL) == [card['ts']]}", card)

        log.say(BOB, "Checkout error rate is at 40% since 14:02")
        symptom, _ = await driver.post_message(CHANNEL, BOB, "Checkout error rate is at 40% since 14:02")
        log.say(CAROL, "Deploy 4512 went out at 14:00")
        deploy, _ = await driver.post_message(CHANNEL, CAROL, "Deploy 4512 went out at 14:00")
        log.say(ALICE, "(in thread) Rolling back 4512 now")
        rollback, delivery = await driver.post_message(CHANNEL, ALICE, "Rolling back 4512 now", thread_ts=deploy["ts"])
        await harness.processed(delivery.event_id)

        for who, message in ((ALICE, symptom), (BOB, deploy), (CAROL, rollback)):
            out.write(f"\n{log.name(who)} reacts :pushpin: to \"{message['text']}\"\n")
            await harness.processed((await driver.react(CHANNEL, message["ts"], who)).event_id)

        log.say(CAROL, "(edits) Deploy 4512 (cache flag flip) went out at 14:00")
        await harness.processed((await driver.edit_message(CHANNEL, deploy["ts"], "Deploy 4512 (cache flag flip) went out at 14:00")).event_id)

        answers = len(emulator.responses())
        log.say(BOB, "/postmortem note Rollback complete, error rate back to 0.1%")
        await driver.slash_command(CHANNEL, BOB, "note Rollback complete, error rate back to 0.1%")
        log.show("only bob sees", (await harness.responses(answers + 1))[-1])

        log.say(ALICE, "/postmortem timeline")
        await driver.slash_command(CHANNEL, ALICE, "timeline")
        log.show("only alice sees", (await harness.responses(answers + 2))[-1])

        await post_mortem(harness, log, answers + 2)
        await follow_through(harness, log)
    finally:
        await harness.stop()
        await emulator.stop()
    return 0


async def post_mortem(harness: Harness, log: Transcript, answers: int) -> None:
    """Resolve, write the post-mortem in the modal, submit, and print the document."""
    emulator, driver, out = harness.emulator, harness.driver, log.out
    future = (harness.bot.services.postmortems.clock.now() + timedelta(days=14)).date().isoformat()

    log.say(ALICE, "/postmortem resolve")
    view = await harness.open_postmortem(CHANNEL, ALICE)
    context = next((b for b in view["blocks"] if b["type"] == "context"), {"elements": [{"text": ""}]})
    out.write(f"  [a modal opens for alice: \"{view['title']['text']}\", {len(view['blocks'])} blocks]\n")
    out.write(f"    {readable(context['elements'][0]['text'], log.name)}\n")
    card = emulator.message(CHANNEL, (await harness.bot.services.timeline.current_incident(emulator.team_id, CHANNEL)).card_ts)
    log.show("the pinned card now", card)

    out.write("\nalice fills in the post-mortem and adds two action items\n")
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
    first, second = harness.row_keys(view)
    edits.update(harness.row_edits(first, "Add a p99 latency alert on checkout at 800 ms for 5 min", BOB, future, priority="P1"))
    edits.update(
        harness.row_edits(second, "Set a default for the stampede flag in the config schema, checked in CI", CAROL, future)
    )
    before = len(harness.bot_messages(CHANNEL))
    delivery = await driver.submit_view(view, ALICE, edits)
    out.write(f"  [submitted: HTTP {delivery.status}, the modal closes]\n")

    async def shared() -> dict | None:
        posted = [m for m in harness.bot_messages(CHANNEL)[before:] if "Post-mortem submitted" in m.get("text", "")]
        return posted[-1] if posted and emulator.uploaded_files() else None

    summary = await harness.eventually(shared)
    log.show("#inc-checkout", summary)
    receipt = emulator.messages(emulator.open_dm(ALICE))
    if receipt:
        log.show("DM to alice", receipt[-1])
    document = emulator.uploaded_files()[-1]
    out.write(f"\n--- {document['filename']}, attached in the summary's thread ---\n\n{document['content'].decode()}")


async def follow_through(harness: Harness, log: Transcript) -> None:
    """The next sweep DMs an owner inside their working hours; they answer with a button."""
    from sqlalchemy import select

    from storage.models import Nudge

    emulator, out = harness.emulator, log.out
    async with harness.bot.services.timeline.sessions() as session:
        first = await session.scalar(
            select(Nudge).where(Nudge.status == "pending", Nudge.recipient == BOB).order_by(Nudge.not_before)
        )
    if first is None:
        return
    out.write(f"\n--- postmortem-bot sweep --at {first.not_before.isoformat()} (bob's next working hour, Paris) ---\n")
    report = await harness.bot.services.nudges.sweep(first.not_before)
    for line in report.lines():
        out.write(f"  {line}\n")
    dm = [m for m in emulator.messages_in_dm(BOB) if m.get("user") == emulator.bot_user_id][-1]
    log.show("DM to bob", dm)
    out.write("\nbob presses [In progress]\n")
    await harness.driver.click_message_button(emulator.open_dm(BOB), dm["ts"], BOB, "item_in_progress")

    async def updated() -> dict | None:
        current = emulator.message(emulator.open_dm(BOB), dm["ts"])
        return current if current and current.get("blocks") != dm.get("blocks") else None

    log.show("bob's DM, updated in place", await harness.eventually(updated))

    async def replied() -> dict | None:
        replies = [m for m in harness.bot_messages(CHANNEL) if m.get("thread_ts") and "started on" in m.get("text", "")]
        return replies[-1] if replies else None

    log.show("#inc-checkout, in the summary's thread", await harness.eventually(replied))
