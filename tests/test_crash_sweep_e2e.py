"""Crash, the sweep half (issue 5): sweepers killed with SIGKILL at random points while they
send, restarted each time; at the end nothing is missing, nothing is doubled, no nudge was
sent twice. On SQLite and on PostgreSQL.

Which process: `postmortem-bot sweep --at`, not `serve`. Both run the same code
(`Bot.create`, then `NudgeService.sweep`); `serve` only adds APScheduler calling it every
minute on the system clock. A claim left by a killed sweeper is recovered only once it is
older than CLAIM_LEASE (5 minutes) on the sweeper's clock, so recovery on the system clock
would cost five real minutes a kill; `--at` moves the clock instead. Every restart runs at
a later instant than the process it replaces: mostly just past the lease (the claims are
recovered), sometimes inside it (the claims must wait and stay untouched), sometimes long
after (the bot was down for a while). The emulator's clock follows (`emulator.clock`), so
message times in Slack and the sweeper's clock agree, as in production.

Where the kills land: chat.postMessage is slowed down in the emulator so a sweep takes a
while, and each run is killed at a random point picked with a seeded RNG
(POSTMORTEM_CRASH_SEED to replay one): during start-up, right after its claim, while its
n-th message is in flight (Slack posts it, the sweeper never hears: sent, not marked),
just after its n-th answer (around the mark), or while it is asking Slack about a stale
claim. After each kill the test waits for the calls in flight to land, then classifies
from the database and the emulator what the kill left behind. The seed replays the plan
(where, the n, the waits, the restart instants); where exactly a kill lands also depends on
how fast the processes run, so the summary printed says what happened.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bot.clock import FixedClock, ShiftedClock
from bot.nudges import CLAIM_LEASE, NUDGE_EVENT_TYPE, STALE_AFTER
from slack_emulator import SlackEmulator
from storage.models import ActionItem, KnownPerson, Nudge
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, SIGNING_SECRET, Rig

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
GUARD_S = 60  # a hung process fails the test instead of hanging CI

OWNERS = (ALICE, BOB, CAROL)  # New York, Paris, Tokyo: three working days, three DMs
ITEMS = 40
# Where each run is to be killed, dealt from a shuffled deck so that every kind is tried on
# every backend whatever the seed; the seed picks the order, the n, the delays and the gaps.
DECK = ["post in flight"] * 3 + ["post answered"] * 2 + ["claimed"] * 2 + ["startup"] + ["lookup in flight"] * 2
KILLS = len(DECK)  # per backend
POST_DELAY = 0.04  # seconds the emulator holds each chat.postMessage
HISTORY_DELAY = 0.02  # and each conversations.history (recovery's lookup)


@dataclass
class Kill:
    at: datetime
    plan: str
    landed: str = ""
    in_window: list[str] = field(default_factory=list)  # claimed and sent by it, not marked
    recovering: list[str] = field(default_factory=list)  # re-claimed by it, sent before, not marked
    unsent_claims: int = 0  # claimed by it, not in Slack
    unplanned: list[str] = field(default_factory=list)  # sent and marked, next reminder not planned


PLANNING_INSTANT = datetime(2026, 3, 16, 7, tzinfo=UTC)
"""A Monday 07:00 UTC: Tokyo's working day is ending, Paris's and New York's are ahead the
same day, so every assignment falls due within seven hours of it."""


@pytest.fixture
async def rig(emulator: SlackEmulator, database_url: str):
    """The bot, planning on a fixed clock (the sweeps run as processes with `--at`)."""
    clock = FixedClock(PLANNING_INSTANT)
    emulator.clock = ShiftedClock(PLANNING_INSTANT)
    harness = await Rig.start(emulator, database_url, clock=clock, signing_secret=SIGNING_SECRET)
    try:
        yield harness
    finally:
        await harness.stop()


def crash_seed() -> int:
    return int(os.environ.get("POSTMORTEM_CRASH_SEED") or random.SystemRandom().randrange(2**32))


def environ(rig: Rig) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and k != "DATABASE_URL"} | {
        "SLACK_BOT_TOKEN": rig.emulator.bot_token,
        "SLACK_API_URL": rig.emulator.api_url,
        "DATABASE_URL": rig.url,
    }


def nudge_messages(emulator: SlackEmulator) -> list[dict]:
    """Every message in the workspace that carries a nudge's key."""
    return [
        m
        for channel in emulator.channels
        for m in emulator.messages(channel)
        if (m.get("metadata") or {}).get("event_type") == NUDGE_EVENT_TYPE
    ]


def keys_in_slack(emulator: SlackEmulator) -> Counter[str]:
    return Counter(m["metadata"]["event_payload"]["key"] for m in nudge_messages(emulator))


async def all_nudges(rig: Rig) -> list[Nudge]:
    async with rig.bot.services.timeline.sessions() as session:
        return list(await session.scalars(select(Nudge).order_by(Nudge.id)))


async def open_items(rig: Rig) -> list[ActionItem]:
    async with rig.bot.services.timeline.sessions() as session:
        return list(await session.scalars(select(ActionItem).where(ActionItem.status.in_(("open", "in_progress")))))


async def unplanned_items(rig: Rig) -> list[str]:
    """Open items told about (a sent reminder) with no next reminder pending or claimed."""
    rows = await all_nudges(rig)
    lost = []
    for item in await open_items(rig):
        mine = [r for r in rows if r.kind == "action_item" and r.subject == f"action_item:{item.id}"]
        if any(r.status == "sent" for r in mine) and not any(r.status in ("pending", "claimed") for r in mine):
            lost.append(f"action_item:{item.id}")
    return lost


async def seed_items(rig: Rig) -> None:
    """An incident with ITEMS open action items across three owners, through the slash command."""
    await rig.start_incident()
    due = PLANNING_INSTANT.date() + timedelta(days=30)
    for n in range(ITEMS):
        owner = OWNERS[n % len(OWNERS)]
        before = len(rig.emulator.responses())
        await rig.driver.slash_command(
            INCIDENT_CHANNEL,
            ALICE,
            f"action <@{owner}|x> {due.isoformat()} Add a p99 latency alert on shard {n} at 800 ms",
        )
        answer = (await rig.responses(before + 1))[-1]
        assert "Action item added" in answer["text"], answer["text"]

    async def all_planned() -> bool:
        return len([r for r in await all_nudges(rig) if r.status == "pending"]) == ITEMS

    await rig.eventually(all_planned)


class Sweeper:
    """One `postmortem-bot sweep --at` process, and what it has asked Slack so far."""

    def __init__(self, rig: Rig, at: datetime) -> None:
        self.rig, self.at = rig, at
        self.calls_before = len(rig.emulator.calls)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        # Slack's clock reads what the sweeper's does (plus the real seconds that pass).
        self.rig.emulator.clock = ShiftedClock(self.at)
        self.process = await asyncio.create_subprocess_exec(
            SCRIPT,
            "sweep",
            "--at",
            self.at.isoformat(),
            env=environ(self.rig),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    def answered(self, method: str) -> int:
        """Calls of `method` this process has made and Slack has answered."""
        return sum(1 for c in self.rig.emulator.calls[self.calls_before :] if c["method"] == method)

    def arrived(self, method: str) -> int:
        """Calls of `method` this process has made: answered, or in flight now."""
        return self.answered(method) + self.rig.emulator.in_flight.get(method, 0)

    @property
    def running(self) -> bool:
        assert self.process is not None
        return self.process.returncode is None

    async def until(self, condition: Callable[[], bool], delay: float = 0.0) -> bool:
        """Wait for `condition` (polled every millisecond); False if the process ended first."""
        while not condition():
            if not self.running:
                return False
            await asyncio.sleep(0.001)
        if delay:
            await asyncio.sleep(delay)
        return self.running

    async def kill(self) -> bool:
        """SIGKILL; True if it was still running. Then wait for Slack to finish what it received."""
        assert self.process is not None
        killed = self.running
        if killed:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.communicate(), GUARD_S)
        while sum(self.rig.emulator.in_flight.values()):
            await asyncio.sleep(0.005)
        return killed and self.process.returncode == -signal.SIGKILL

    async def finish(self) -> list[str]:
        assert self.process is not None
        out, err = await asyncio.wait_for(self.process.communicate(), GUARD_S)
        assert self.process.returncode == 0, err.decode()[-3000:]
        return out.decode().splitlines()


async def run_and_kill(sweeper: Sweeper, rng: random.Random, plan: str) -> bool:
    """Start `sweeper` and kill it as `plan` says; False if it ended before."""
    n = rng.randint(1, 3)
    if plan == "claimed":
        # The bot has forgotten who the owners are (people it never met, or a database kept
        # from before it kept them): the sweeper asks Slack after its claim, and dies there.
        async with sweeper.rig.bot.services.timeline.sessions.begin() as session:
            await session.execute(delete(KnownPerson))
    await sweeper.start()
    if plan == "startup":  # anywhere from exec to its first claim and beyond
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        reached = sweeper.running
    elif plan == "claimed":  # its first look-up of an owner comes after the claim, before any send
        reached = await sweeper.until(lambda: sweeper.arrived("users.info") >= 1)
    elif plan == "post in flight":  # Slack has the request; the sweeper will never hear back
        reached = await sweeper.until(lambda: sweeper.arrived("chat.postMessage") >= n, rng.uniform(0, POST_DELAY / 2))
    elif plan == "post answered":  # the answer is back: marking and planning, composing the next
        reached = await sweeper.until(lambda: sweeper.answered("chat.postMessage") >= n, rng.uniform(0, 0.015))
    else:  # recovering a crashed sweeper's claim, asking Slack whether it was sent
        reached = await sweeper.until(
            lambda: sweeper.arrived("conversations.history") >= n, rng.uniform(0, HISTORY_DELAY / 2)
        )
    killed = await sweeper.kill()
    return reached and killed


async def classify(rig: Rig, kill: Kill, unplanned_before: list[str]) -> None:
    """What the kill left behind: its claims already in Slack (sent by it: the send/mark
    window; sent by a sweeper killed before: a recovery cut short), its claims not in Slack,
    reminders marked sent whose next one was not planned (no longer possible: marking and
    planning are one transaction)."""
    sent_at = {m["metadata"]["event_payload"]["key"]: float(m["ts"]) for m in nudge_messages(rig.emulator)}
    mine = [r for r in await all_nudges(rig) if r.status == "claimed" and r.claimed_at == kill.at]
    kill.in_window = [r.key for r in mine if sent_at.get(r.key, 0) >= kill.at.timestamp()]
    kill.recovering = [r.key for r in mine if 0 < sent_at.get(r.key, 0) < kill.at.timestamp()]
    kill.unsent_claims = sum(1 for r in mine if r.key not in sent_at)
    kill.unplanned = [s for s in await unplanned_items(rig) if s not in unplanned_before]
    if kill.in_window:
        kill.landed = "between send and mark"
    elif kill.recovering:
        kill.landed = "recovering a sent claim, before its mark"
    elif kill.unplanned:
        kill.landed = "between mark and plan"
    elif kill.unsent_claims:
        kill.landed = "after claim, before its send"
    else:
        kill.landed = "before claim"


def report(backend: str, seed: int, kills: list[Kill], ended_first: int) -> str:
    landed = Counter(k.landed for k in kills)
    lines = [
        f"{backend}: seed {seed}: {len(kills)} kills ({ended_first} runs ended before their kill): "
        + ", ".join(f"{n} {where}" for where, n in sorted(landed.items()))
        + f"; {sum(len(k.in_window) for k in kills)} messages in Slack and not marked at a kill, recovered from Slack"
    ]
    lines += [
        f"  {k.at:%H:%M} {k.plan:<17} -> {k.landed} {k.in_window or k.recovering or ''} {k.unplanned or ''}"
        for k in kills
    ]
    return "\n".join(lines)


async def test_sweepers_killed_at_random_points_send_every_nudge_exactly_once(rig: Rig) -> None:
    seed = crash_seed()
    rng = random.Random(seed)
    backend = rig.url.split(":", 1)[0]
    await seed_items(rig)
    rig.emulator.delay("chat.postMessage", POST_DELAY, times=100_000)
    rig.emulator.delay("conversations.history", HISTORY_DELAY, times=100_000)

    due = [r.key for r in await all_nudges(rig)]
    at = max(r.not_before for r in await all_nudges(rig)) + timedelta(minutes=1)
    # A reminder still pending STALE_AFTER past its time is replanned to its owner's next
    # working day (right, but then not due in this test): long gaps stop well before that.
    long_gaps_until = min(r.not_before for r in await all_nudges(rig)) + STALE_AFTER - timedelta(hours=3)
    deck = rng.sample(DECK, len(DECK))
    kills: list[Kill] = []
    ended_first = 0
    summary = ""
    try:
        while deck:
            rows = await all_nudges(rig)
            if not any(r.status == "claimed" or (r.status == "pending" and r.not_before <= at) for r in rows):
                break  # all sent before the deck ran out: too few kills (asserted below, after the rest)
            stale = any(r.status == "claimed" and r.claimed_at < at - CLAIM_LEASE for r in rows)
            plan = deck[-1]
            if plan == "lookup in flight" and not stale:  # nothing to recover at this instant
                plan = rng.choice(["post in flight", "post answered", "claimed"])
            unplanned_before = await unplanned_items(rig)
            if await run_and_kill(Sweeper(rig, at), rng, plan):
                deck.pop()
                kill = Kill(at, plan)
                await classify(rig, kill, unplanned_before)
                kills.append(kill)
            else:  # it had finished (nothing it could do yet): the same plan on the next run
                ended_first += 1
                if plan == "lookup in flight":  # it looked nothing up: kill elsewhere
                    deck[-1] = rng.choice(["post in flight", "post answered", "claimed"])
                at += CLAIM_LEASE + timedelta(minutes=1)
                continue
            # Restart later: mostly just past the lease, sometimes inside it, sometimes long after.
            gap = rng.choice(
                [CLAIM_LEASE + timedelta(minutes=1)] * 4
                + [timedelta(minutes=2), timedelta(minutes=rng.randint(25, 45))]
            )
            at += gap if at + gap < long_gaps_until else CLAIM_LEASE + timedelta(minutes=1)

        # Restarted for good: one sweep past every lease recovers and sends the rest; a second sends nothing.
        at += CLAIM_LEASE + timedelta(minutes=1)
        final = Sweeper(rig, at)
        await final.start()
        await final.finish()
        again = Sweeper(rig, at + timedelta(minutes=1))
        await again.start()
        assert [line for line in await again.finish() if not line.startswith("sweep at")] == []

        summary = report(backend, seed, kills, ended_first)
        print(summary)
        landed = Counter(k.landed for k in kills)

        # Nothing doubled: every key in exactly one message.
        in_slack = keys_in_slack(rig.emulator)
        doubled = {
            key: [
                f"{datetime.fromtimestamp(float(m['ts']), UTC):%H:%M:%S}"
                for m in nudge_messages(rig.emulator)
                if m["metadata"]["event_payload"]["key"] == key
            ]
            for key, n in in_slack.items()
            if n > 1
        }
        assert not doubled, f"sent more than once (at): {doubled}"
        # Nothing missing: every nudge that was due is sent, once, and recorded as sent.
        rows = {r.key: r for r in await all_nudges(rig)}
        assert [k for k in due if rows[k].status != "sent"] == [], "every assignment that was due is sent"
        assert set(in_slack) == {k for k, r in rows.items() if r.status == "sent"}
        assert [r.key for r in rows.values() if r.status == "claimed"] == [], "no claim left behind"
        assert [r.key for r in rows.values() if r.status == "pending" and r.not_before <= at] == [], (
            "nothing due unsent"
        )
        for r in rows.values():
            if r.status == "sent":
                message = rig.emulator.message(r.message_channel, r.message_ts)
                assert message and message["metadata"]["event_payload"]["key"] == r.key, r.key
        # No reminder lost: every open item has its next one planned.
        assert await unplanned_items(rig) == [], "sent, and no next reminder planned"
        # The suite proves something only if kills hit the hard case.
        assert len(kills) == KILLS, summary
        assert landed["between send and mark"] >= 1, summary
        assert landed["after claim, before its send"] + landed["before claim"] >= 1, summary
    except BaseException:
        print(f"crash test failed on {backend}; replay its plan with POSTMORTEM_CRASH_SEED={seed}")
        if not summary:
            print(report(backend, seed, kills, ended_first))
        raise
