"""Reconciliation end to end: what happens in Slack while the bot hears nothing (the emulator
changes without sending events) is repaired by `/postmortem sync`, before resolving, and at
start-up; paging, rate limits and newer events are respected."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.reconcile import CallPacer
from storage.models import Message
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, QUIET_CHANNEL, Rig

C = INCIDENT_CHANNEL


def messages_in_timeline(items) -> list[str]:
    return [i.text for i in items if i.kind == "message"]


async def sync(rig: Rig, user: str = ALICE, channel: str = C) -> str:
    before = len(rig.emulator.responses())
    delivery = await rig.driver.slash_command(channel, user, "sync")
    assert delivery.status == 200
    answers = await rig.responses(before + 1)
    assert answers[-1]["response_type"] == "ephemeral"
    return answers[-1]["text"]


async def post(rig: Rig, user: str, text: str, thread_ts: str | None = None) -> dict:
    """Post while the bot listens, and wait until it has stored the message."""
    message, delivery = await rig.driver.post_message(C, user, text, thread_ts=thread_ts)
    await rig.processed(delivery.event_id)
    return message


async def stored(rig: Rig) -> dict[str, Message]:
    async with rig.bot.services.timeline.sessions() as session:
        return {m.ts: m for m in await session.scalars(select(Message))}


async def test_sync_repairs_messages_edits_deletes_and_pins_missed_while_away(rig: Rig) -> None:
    await rig.start_incident()
    slack = rig.emulator
    # Seen live: three messages, one of them pinned.
    kept = await post(rig, ALICE, "DB primary failing over")
    edited = await post(rig, BOB, "errors at 5%")
    gone = await post(rig, CAROL, "rolled back (wrong)")
    unpinned = await post(rig, BOB, "paging storage team")
    for ts in (kept["ts"], gone["ts"], unpinned["ts"]):
        await rig.driver.react(C, ts, ALICE)
    await rig.eventually(lambda: _timeline_has(rig, 3))

    # Then the bot hears nothing: Slack changes without events.
    missed = slack.post_user_message(C, CAROL, "failover done at 14:05 <!channel>")
    reply = slack.post_user_message(C, BOB, "replica lag back to 0", thread_ts=missed["ts"])
    slack.edit_user_message(C, edited["ts"], "errors at 50%")
    slack.delete_message(C, gone["ts"])
    slack.remove_reaction(C, unpinned["ts"], ALICE, "pushpin")
    slack.add_reaction(C, missed["ts"], CAROL, "pushpin")
    slack.add_reaction(C, edited["ts"], BOB, "pushpin")
    slack.add_reaction(C, reply["ts"], ALICE, "thumbsup")  # not a timeline emoji

    answer = await sync(rig)

    assert "2 missed messages" in answer and "1 edit" in answer and "1 delete" in answer
    assert "2 timeline reactions added" in answer and "1 timeline reaction removed" in answer
    items = await rig.timeline()
    assert messages_in_timeline(items) == [
        "DB primary failing over",
        "errors at 50%",
        "failover done at 14:05 @channel",
    ]
    rows = await stored(rig)
    assert rows[reply["ts"]].thread_ts == missed["ts"] and rows[reply["ts"]].source == "sync"
    assert rows[gone["ts"]].deleted
    assert rows[edited["ts"]].original_text == "errors at 5%", "the first text is kept under an edit"

    # A second sync finds nothing to do: repairs are idempotent.
    assert "nothing was missing" in await sync(rig)
    assert messages_in_timeline(await rig.timeline()) == messages_in_timeline(items)


async def _timeline_has(rig: Rig, n: int) -> bool:
    return len(messages_in_timeline(await rig.timeline())) == n


async def test_sync_pages_through_long_history_and_long_threads(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.reconcile.PAGE_SIZE", 7)  # the paging logic, with small pages
    await rig.start_incident()
    slack = rig.emulator
    top = [slack.post_user_message(C, ALICE, f"update {i}") for i in range(30)]
    replies = [slack.post_user_message(C, BOB, f"reply {i}", thread_ts=top[3]["ts"]) for i in range(20)]
    slack.add_reaction(C, top[29]["ts"], ALICE, "pushpin")
    slack.add_reaction(C, replies[19]["ts"], CAROL, "pushpin")

    answer = await sync(rig)

    assert "50 missed messages" in answer
    rows = await stored(rig)
    assert {m["ts"] for m in top + replies} <= set(rows)
    history = slack.calls_to("conversations.history")
    thread = [c for c in slack.calls_to("conversations.replies") if c["args"].get("ts") == top[3]["ts"]]
    assert len(history) >= 5 and all("cursor" in c["args"] for c in history[1:]), "history was paged with cursors"
    assert len(thread) >= 3 and all("cursor" in c["args"] for c in thread[1:]), "the thread was paged with cursors"
    assert messages_in_timeline(await rig.timeline()) == ["update 29", "reply 19"]


async def test_sync_waits_out_rate_limits(rig: Rig) -> None:
    await rig.start_incident()
    rig.emulator.post_user_message(C, ALICE, "missed while away")
    rig.emulator.fail("conversations.history", status=429, retry_after=1)

    answer = await sync(rig)

    assert "1 missed message" in answer
    assert len(rig.emulator.calls_to("conversations.history")) == 2, "asked again after Retry-After"


async def test_a_thread_slack_will_not_give_deletes_nothing(rig: Rig) -> None:
    await rig.start_incident()
    parent = await post(rig, ALICE, "parent")
    reply = await post(rig, BOB, "reply in thread", thread_ts=parent["ts"])
    await rig.driver.react(C, reply["ts"], ALICE)
    await rig.eventually(lambda: _timeline_has(rig, 1))
    rig.emulator.fail("conversations.replies", status=500, times=4)  # beyond the retries

    answer = await sync(rig)

    assert "would not give 1 part" in answer
    assert messages_in_timeline(await rig.timeline()) == ["reply in thread"]
    assert not (await stored(rig))[reply["ts"]].deleted


async def test_a_deleted_parent_leaves_its_replies_and_a_gone_thread_takes_them(rig: Rig) -> None:
    await rig.start_incident()
    parent = await post(rig, ALICE, "parent")
    reply = await post(rig, BOB, "stays", thread_ts=parent["ts"])
    lone = await post(rig, ALICE, "lone parent")
    lone_reply = await post(rig, CAROL, "goes too", thread_ts=lone["ts"])
    for ts in (parent["ts"], reply["ts"], lone_reply["ts"]):
        await rig.driver.react(C, ts, ALICE)
    await rig.eventually(lambda: _timeline_has(rig, 3))
    rig.emulator.delete_message(C, parent["ts"])  # leaves a tombstone: the thread has a reply
    rig.emulator.delete_message(C, lone_reply["ts"])
    rig.emulator.delete_message(C, lone["ts"])  # nothing left: thread_not_found

    answer = await sync(rig)

    assert "3 deletes" in answer
    assert messages_in_timeline(await rig.timeline()) == ["stays"]


async def test_a_truncated_reaction_list_removes_no_one(rig: Rig) -> None:
    await rig.start_incident()
    message = await post(rig, ALICE, "pinned by many")
    await rig.driver.react(C, message["ts"], CAROL)
    await rig.eventually(lambda: _timeline_has(rig, 1))
    # Slack lists only some of the users when many reacted: CAROL is not named, count says 3.
    slack_message = rig.emulator._channels[C].messages[message["ts"]]
    slack_message["reactions"] = [{"name": "pushpin", "users": [ALICE], "count": 3}]

    answer = await sync(rig)

    assert "1 timeline reaction added" in answer and "removed" not in answer
    assert messages_in_timeline(await rig.timeline()) == ["pinned by many"]


async def test_events_newer_than_the_sync_win_and_older_ones_lose(rig: Rig) -> None:
    await rig.start_incident()
    message = await post(rig, ALICE, "flapping pin")
    stale_add = rig.driver.reaction_event("reaction_added", C, message["ts"], BOB, "pushpin")  # made now, sent late
    rig.emulator.add_reaction(C, message["ts"], BOB, "pushpin")
    rig.emulator.remove_reaction(C, message["ts"], BOB, "pushpin")
    rig.emulator.add_reaction(C, message["ts"], CAROL, "pushpin")

    assert "1 timeline reaction added" in await sync(rig)
    assert messages_in_timeline(await rig.timeline()) == ["flapping pin"]

    # BOB's stale add (older than the sync's read) arrives late: nothing changes.
    delivery = await rig.driver.send_event(stale_add)
    assert delivery.status == 200
    await rig.processed(delivery.event_id)
    # CAROL removes her pin after the sync: that event is newer and wins.
    await asyncio.sleep(0.01)
    removal = await rig.driver.unreact(C, message["ts"], CAROL)
    assert removal.status == 200
    await rig.eventually(lambda: _timeline_has(rig, 0))
    assert "nothing was missing" in await sync(rig)


async def test_resolving_syncs_first_so_the_modal_has_the_missed_messages(rig: Rig) -> None:
    await rig.start_incident()
    missed = rig.emulator.post_user_message(C, BOB, "root cause: expired cert")
    rig.emulator.add_reaction(C, missed["ts"], BOB, "pushpin")

    view = await rig.open_postmortem(C, ALICE)

    assert view["callback_id"] == "postmortem_modal"
    assert messages_in_timeline(await rig.timeline()) == ["root cause: expired cert"]
    assert rig.emulator.calls_to("conversations.history"), "resolve read the channel back"


async def test_sync_without_an_incident_says_so(rig: Rig) -> None:
    answer = await sync(rig, channel=QUIET_CHANNEL)
    assert "no incident" in answer.lower()


async def test_start_up_sync_repairs_every_active_incident(rig: Rig) -> None:
    await rig.start_incident()
    missed = rig.emulator.post_user_message(C, CAROL, "posted while the bot was down")

    reports = await rig.bot.services.reconcile.sync_active()

    assert [(r.channel_id, r.messages_added) for r in reports] == [(C, 1)]
    assert (await stored(rig))[missed["ts"]].text == "posted while the bot was down"


async def test_pacer_spaces_calls_after_a_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = CallPacer(per_minute=60, burst=3, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(5):
        await pacer.wait()
    assert slept == [pytest.approx(1.0), pytest.approx(1.0)], "a burst of 3, then one a second"
    now[0] += 10
    slept.clear()
    for _ in range(3):
        await pacer.wait()
    assert slept == [], "the bucket refilled while idle"


async def test_a_late_event_for_a_message_deleted_before_the_sync_does_not_bring_it_back(rig: Rig) -> None:
    await rig.start_incident()
    _, late_post = rig.driver.posted_event(C, BOB, "posted, then deleted while the bot was away")
    rig.emulator.delete_message(C, late_post["ts"])
    newer = rig.emulator.post_user_message(C, ALICE, "still here")
    rig.emulator.add_reaction(C, newer["ts"], ALICE, "pushpin")
    assert "1 missed message" in await sync(rig)

    delivery = await rig.driver.send_event(late_post, retry_num=3)  # Slack's last retry, after the sync
    assert delivery.status == 200
    await rig.processed(delivery.event_id)

    assert late_post["ts"] not in await stored(rig)
    # A message newer than the read is taken as it comes.
    fresh = await post(rig, CAROL, "posted after the sync")
    assert (await stored(rig))[fresh["ts"]].text == "posted after the sync"
