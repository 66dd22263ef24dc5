"""`postmortem-bot demo`: the bot on SQLite against the Slack emulator, playing a short incident.

For a newcomer without a Slack workspace: everything below goes through the same signed HTTP
endpoint and the same Web API calls as production; only Slack itself is emulated.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.documents import document_data, render_markdown
from bot.emulator.harness import Harness
from bot.emulator.server import SlackEmulator
from bot.emulator.transcript import render

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

        incident = await harness.bot.services.timeline.current_incident(emulator.team_id, CHANNEL)
        assert incident is not None
        document = render_markdown(document_data(incident, await harness.timeline(CHANNEL)))
        out.write(f"\n--- postmortem-bot export --channel {CHANNEL} --format md ---\n\n{document}")
    finally:
        await harness.stop()
        await emulator.stop()
    return 0
