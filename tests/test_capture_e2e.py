"""Incident capture end to end: signed requests into the real HTTP endpoint, the real
slack_sdk client out to the emulator, and the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from storage.models import Incident, Message, ProcessedEvent, Reaction, TimelineEntry
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, PAGERBOT, PRIVATE_CHANNEL, QUIET_CHANNEL, Rig


async def count(rig: Rig, model: type, *where) -> int:
    async with rig.bot.services.timeline.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


def texts(items) -> list[str]:
    return [i.text for i in items if i.kind == "message"]


# --- /postmortem start -------------------------------------------------------------------------


async def test_start_joins_posts_and_pins_card_and_logs_declaration(rig: Rig) -> None:
    emulator = rig.emulator
    assert emulator.bot_user_id not in emulator.channels[INCIDENT_CHANNEL]["members"]

    card = await rig.start_incident("Checkout failing --sev 1")

    assert emulator.bot_user_id in emulator.channels[INCIDENT_CHANNEL]["members"], "bot joined the channel"
    assert emulator.pins(INCIDENT_CHANNEL) == [card["ts"]]
    blocks = json.dumps(card["blocks"])
    assert "Checkout failing" in blocks and "SEV1" in blocks and f"<@{ALICE}>" in blocks
    assert "<!date^" in blocks, "start time is shown in each reader's time zone"
    async with rig.bot.services.timeline.sessions() as session:
        incident = await session.scalar(select(Incident))
    assert (incident.title, incident.severity, incident.status) == ("Checkout failing", 1, "active")
    assert incident.commander_id == ALICE and incident.card_ts == card["ts"]
    assert incident.team_id == emulator.team_id
    items = await rig.timeline()
    assert [(i.kind, i.text) for i in items] == [("lifecycle", "Incident declared: Checkout failing (SEV1)")]


async def test_second_start_answers_with_the_active_incident(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    delivery = await rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "start Something else")
    assert delivery.status == 200
    (answer,) = await rig.responses(1)
    assert answer["response_type"] == "ephemeral"
    assert "already active" in answer["text"] and "Checkout failing" in answer["text"] and "SEV2" in answer["text"]
    assert await count(rig, Incident) == 1
    bot_posts = [m for m in rig.emulator.messages(INCIDENT_CHANNEL) if m.get("user") == rig.emulator.bot_user_id]
    assert len(bot_posts) == 1


async def test_concurrent_starts_make_one_incident(rig: Rig) -> None:
    import asyncio

    deliveries = await asyncio.gather(
        *(rig.driver.slash_command(INCIDENT_CHANNEL, user, "start Race --sev 2") for user in (ALICE, BOB, CAROL))
    )
    assert all(d.status == 200 for d in deliveries)
    await rig.responses(2)  # the two losers are told an incident is active
    assert await count(rig, Incident) == 1
    assert await count(rig, TimelineEntry) == 1


async def test_help_and_unknown_subcommands_answer_usage_ephemerally(rig: Rig) -> None:
    for text in ("help", "", "frobnicate now"):
        delivery = await rig.driver.slash_command(QUIET_CHANNEL, ALICE, text)
        assert delivery.status == 200
        answer = delivery.json()
        assert answer["response_type"] == "ephemeral"
        for sub in ("start", "note", "timeline", "help"):
            assert f"/postmortem {sub}" in answer["text"]
    assert "frobnicate" in delivery.json()["text"]


async def test_wrong_arguments_get_a_hint_and_nothing_is_written(rig: Rig) -> None:
    for text, hint in (("start", "title"), ("start Outage --sev 9", "1 to 4"), ("note 25:00 late", "HH:MM")):
        answer = (await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, text)).json()
        assert answer["response_type"] == "ephemeral" and hint in answer["text"], (text, answer)
    assert await count(rig, Incident) == 0


async def test_start_in_private_channel_without_the_bot_explains_and_leaves_nothing(rig: Rig) -> None:
    await rig.driver.slash_command(PRIVATE_CHANNEL, ALICE, "start Secret outage")
    (answer,) = await rig.responses(1)
    assert "/invite" in answer["text"]
    assert await count(rig, Incident) == 0
    assert await count(rig, TimelineEntry) == 0


# --- capture -------------------------------------------------------------------------------------


async def test_human_messages_threads_and_files_are_stored_noise_is_not(rig: Rig) -> None:
    await rig.start_incident()
    driver = rig.driver
    root, _ = await driver.post_message(INCIDENT_CHANNEL, ALICE, "Error rate at 40%")
    _, d_reply = await driver.post_message(INCIDENT_CHANNEL, BOB, "Looking at the LB", thread_ts=root["ts"])
    _, d_file = await driver.post_message(
        INCIDENT_CHANNEL, CAROL, "graph", files=[{"id": "F1", "name": "latency.png"}], subtype="file_share"
    )
    _, d_bot = await driver.send_bot_message(INCIDENT_CHANNEL, PAGERBOT, "ALERT: checkout 5xx")
    _, d_join = await driver.post_message(
        INCIDENT_CHANNEL, CAROL, "<@UCAROL0001> has joined the channel", subtype="channel_join"
    )
    _, d_quiet = await driver.post_message(QUIET_CHANNEL, ALICE, "lunch?")
    for delivery in (d_reply, d_file, d_bot, d_join, d_quiet):
        assert delivery.status == 200
        await rig.processed(delivery.event_id)

    async with rig.bot.services.timeline.sessions() as session:
        rows = {m.ts: m for m in await session.scalars(select(Message))}
    assert set(m.text for m in rows.values()) == {"Error rate at 40%", "Looking at the LB", "graph"}
    reply = next(m for m in rows.values() if m.text == "Looking at the LB")
    assert reply.thread_ts == root["ts"] and reply.user_id == BOB
    assert next(m for m in rows.values() if m.text == "graph").file_names == ["latency.png"]
    assert all(m.team_id == rig.emulator.team_id for m in rows.values())


async def test_edit_updates_text_and_keeps_the_original_delete_removes(rig: Rig) -> None:
    await rig.start_incident()
    first, _ = await rig.driver.post_message(INCIDENT_CHANNEL, ALICE, "DB at 90% CPU")
    second, _ = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, "restarting web-3")
    for msg in (first, second):
        await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, msg["ts"], CAROL)).event_id)
    await rig.processed((await rig.driver.edit_message(INCIDENT_CHANNEL, first["ts"], "DB at 95% CPU")).event_id)
    await rig.processed((await rig.driver.edit_message(INCIDENT_CHANNEL, first["ts"], "DB at 99% CPU")).event_id)
    await rig.processed((await rig.driver.delete_message(INCIDENT_CHANNEL, second["ts"])).event_id)

    items = [i for i in await rig.timeline() if i.kind == "message"]
    assert [(i.text, i.edited) for i in items] == [("DB at 99% CPU", True)]
    async with rig.bot.services.timeline.sessions() as session:
        stored = await session.scalar(select(Message).where(Message.ts == first["ts"]))
    assert stored.original_text == "DB at 90% CPU"

    # A late redelivery of the deleted message's own event must not bring it back.
    replay = dict(second, channel=INCIDENT_CHANNEL, event_ts=second["ts"])
    await rig.processed((await rig.driver.send_event(replay)).event_id)
    assert texts(await rig.timeline()) == ["DB at 99% CPU"]


async def test_pushpin_promotes_at_message_time_and_last_removal_demotes(rig: Rig) -> None:
    await rig.start_incident()
    early, _ = await rig.driver.post_message(INCIDENT_CHANNEL, ALICE, "first symptom")
    late, _ = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, "rollback started")
    # Pinned in the opposite order: the timeline follows the messages' own times.
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, late["ts"], ALICE)).event_id)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, early["ts"], BOB)).event_id)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, early["ts"], CAROL)).event_id)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, early["ts"], ALICE, "eyes")).event_id)
    items = [i for i in await rig.timeline() if i.kind == "message"]
    assert [i.text for i in items] == ["first symptom", "rollback started"]
    assert items[0].occurred_at < items[1].occurred_at
    assert items[0].ts == early["ts"]

    await rig.processed((await rig.driver.unreact(INCIDENT_CHANNEL, early["ts"], BOB)).event_id)
    assert texts(await rig.timeline()) == ["first symptom", "rollback started"], "CAROL's pushpin remains"
    await rig.processed((await rig.driver.unreact(INCIDENT_CHANNEL, early["ts"], CAROL)).event_id)
    assert texts(await rig.timeline()) == ["rollback started"]


async def test_add_then_remove_processed_out_of_order_ends_removed(rig: Rig) -> None:
    await rig.start_incident()
    msg, _ = await rig.driver.post_message(INCIDENT_CHANNEL, ALICE, "quick pin")
    added = rig.driver.reaction_event("reaction_added", INCIDENT_CHANNEL, msg["ts"], BOB, "pushpin")
    removed = rig.driver.reaction_event("reaction_removed", INCIDENT_CHANNEL, msg["ts"], BOB, "pushpin")
    assert removed["event_ts"] > added["event_ts"]
    await rig.processed((await rig.driver.send_event(removed)).event_id)
    await rig.processed((await rig.driver.send_event(added)).event_id)
    assert texts(await rig.timeline()) == []


async def test_pushpin_on_unseen_messages_fetches_them_from_slack(rig: Rig) -> None:
    emulator = rig.emulator
    # Written before the incident began: the bot never saw these.
    before = emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "deploy 4512 going out")
    after_parent = emulator.post_user_message(INCIDENT_CHANNEL, BOB, "thread about it")
    reply = emulator.post_user_message(INCIDENT_CHANNEL, CAROL, "it was the cache flag", thread_ts=after_parent["ts"])
    newer = emulator.post_user_message(INCIDENT_CHANNEL, BOB, "unrelated newer message")
    await rig.start_incident()

    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, before["ts"], BOB)).event_id)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, reply["ts"], ALICE)).event_id)
    items = [i for i in await rig.timeline() if i.kind == "message"]
    assert [(i.ts, i.text) for i in items] == [
        (before["ts"], "deploy 4512 going out"),
        (reply["ts"], "it was the cache flag"),
    ]
    assert items[1].thread_ts == after_parent["ts"]
    assert newer["ts"] not in {i.ts for i in items}
    assert emulator.calls_to("conversations.replies"), "a reply is looked up with conversations.replies"


async def test_pushpin_on_a_message_slack_cannot_return_keeps_a_placeholder(rig: Rig) -> None:
    await rig.start_incident()
    ghost_ts = rig.emulator.new_ts()
    event = rig.driver.reaction_event("reaction_added", INCIDENT_CHANNEL, ghost_ts, BOB, "pushpin")
    await rig.processed((await rig.driver.send_event(event)).event_id)
    (item,) = [i for i in await rig.timeline() if i.kind == "message"]
    assert item.ts == ghost_ts and item.missing


async def test_message_shortcut_adds_to_timeline(rig: Rig) -> None:
    await rig.start_incident()
    msg, delivery = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, "mitigated by failover")
    await rig.processed(delivery.event_id)
    assert (await rig.driver.message_shortcut(INCIDENT_CHANNEL, msg["ts"], CAROL)).status == 200
    (answer,) = await rig.responses(1)
    assert "Added to the timeline" in answer["text"]
    assert texts(await rig.timeline()) == ["mitigated by failover"]
    await rig.driver.message_shortcut(INCIDENT_CHANNEL, msg["ts"], ALICE)
    assert "already on the timeline" in (await rig.responses(2))[1]["text"]


async def test_message_shortcut_outside_an_incident_says_so(rig: Rig) -> None:
    msg = rig.emulator.post_user_message(QUIET_CHANNEL, BOB, "hello")
    await rig.driver.message_shortcut(QUIET_CHANNEL, msg["ts"], ALICE)
    (answer,) = await rig.responses(1)
    assert "no incident" in answer["text"]
    assert await count(rig, Message) == 0


# --- notes and the timeline view ---------------------------------------------------------------


async def test_note_now_and_at_a_time_in_the_authors_time_zone(rig: Rig) -> None:
    from zoneinfo import ZoneInfo

    await rig.start_incident()
    await rig.driver.slash_command(INCIDENT_CHANNEL, BOB, "note Paged the DB on-call")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "note 00:00 Midnight in New York")
    answers = await rig.responses(2)
    assert all("Added to the timeline" in a["text"] for a in answers)

    notes = [i for i in await rig.timeline() if i.kind == "note"]
    by_text = {n.text: n for n in notes}
    assert by_text["Paged the DB on-call"].user_id == BOB
    midnight = by_text["Midnight in New York"].occurred_at
    local = midnight.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (0, 0)
    assert local.date() == rig.today("America/New_York")
    assert midnight.tzinfo is not None


async def test_note_without_incident_says_how_to_start(rig: Rig) -> None:
    await rig.driver.slash_command(QUIET_CHANNEL, ALICE, "note something")
    (answer,) = await rig.responses(1)
    assert "/postmortem start" in answer["text"]
    assert await count(rig, TimelineEntry) == 0


async def test_timeline_is_ephemeral_sorted_and_escapes_user_text(rig: Rig) -> None:
    await rig.start_incident()
    # As Slack delivers it: @channel, a link and a mention are markup; typed & < > are entities.
    slack_text = "<!channel> ping &amp; &lt;b&gt; <https://evil.example|click> <@UEVIL00001>"
    msg, _ = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, slack_text)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, msg["ts"], ALICE)).event_id)
    await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, "note <!here> too")
    await rig.responses(1)
    await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, "timeline")
    answer = (await rig.responses(2))[1]
    assert answer["response_type"] == "ephemeral"
    rendered = json.dumps(answer)
    for live in ("<!channel>", "<!here>", "<https://evil", "<@UEVIL00001>"):
        assert live not in rendered, f"{live} would be live mrkdwn"
    assert "@channel ping &amp; &lt;b&gt; click @UEVIL00001" in rendered, "shown as typed, escaped once"
    body = "\n".join(b["text"]["text"] for b in answer["blocks"] if b["type"] == "section")
    assert body.index("Incident declared") < body.index("ping") < body.index("too")
    # Stored as typed, so documents need no knowledge of Slack's encoding.
    assert [i.text for i in await rig.timeline() if i.kind == "message"] == ["@channel ping & <b> click @UEVIL00001"]


# --- delivery guarantees -----------------------------------------------------------------------


async def test_redelivered_events_and_double_reactions_never_duplicate(rig: Rig) -> None:
    await rig.start_incident()
    msg, first = await rig.driver.post_message(INCIDENT_CHANNEL, ALICE, "only once")
    event = dict(msg, channel=INCIDENT_CHANNEL, event_ts=msg["ts"])
    for retry in (1, 2, 3):
        redelivery = await rig.driver.send_event(event, event_id=first.event_id, retry_num=retry)
        assert redelivery.status == 200
    # The same message under a new event id (as a replay from another path would be).
    await rig.processed((await rig.driver.send_event(event)).event_id)
    reaction = rig.driver.reaction_event("reaction_added", INCIDENT_CHANNEL, msg["ts"], BOB, "pushpin")
    r1 = await rig.driver.send_event(reaction)
    await rig.driver.send_event(reaction, event_id=r1.event_id, retry_num=1)
    await rig.processed((await rig.driver.send_event(dict(reaction, event_ts=rig.emulator.new_ts()))).event_id)
    await rig.processed(r1.event_id)

    assert await count(rig, Message) == 1
    assert await count(rig, Reaction) == 1
    assert texts(await rig.timeline()) == ["only once"]
    assert await count(rig, ProcessedEvent, ProcessedEvent.event_id == first.event_id) == 1


async def test_bad_or_stale_signatures_get_401_and_store_nothing(rig: Rig) -> None:
    import time

    await rig.start_incident()
    msg = rig.emulator.post_user_message(INCIDENT_CHANNEL, ALICE, "forged")
    event = dict(msg, channel=INCIDENT_CHANNEL, event_ts=msg["ts"])
    forged = await rig.driver.send_event(event, secret="not-the-secret")
    stale = await rig.driver.send_event(event, timestamp=int(time.time()) - 6 * 60)
    assert (forged.status, stale.status) == (401, 401)
    slash = await rig.driver.send(
        "command=/postmortem&text=start+x", "application/x-www-form-urlencoded", secret="nope"
    )
    assert slash.status == 401
    assert await count(rig, Message) == 0
    assert await count(rig, ProcessedEvent) == 0


async def test_malformed_and_unknown_payloads_are_answered_and_write_nothing(rig: Rig) -> None:
    await rig.start_incident()
    garbage = await rig.driver.send("{not json", "application/json")
    assert garbage.status == 400
    no_ts = await rig.driver.send_event(
        {"type": "message", "channel": INCIDENT_CHANNEL, "user": ALICE, "text": "x", "ts": "soon"}
    )
    unknown = await rig.driver.send_event({"type": "emoji_changed", "subtype": "add", "name": "party"})
    bad_reaction = await rig.driver.send_event(
        {"type": "reaction_added", "user": BOB, "reaction": "pushpin", "item": {}}
    )
    for delivery in (no_ts, unknown, bad_reaction):
        assert delivery.status == 200
    await rig.processed(unknown.event_id)
    assert await count(rig, Message) == 0
    assert await count(rig, Reaction) == 0


async def test_the_timeline_emoji_list_is_configurable(emulator, database_url) -> None:
    from bot.config import Settings

    assert Settings.from_env({"POSTMORTEM_TIMELINE_EMOJI": ":round_pushpin:, star"}).timeline_emojis == (
        "round_pushpin",
        "star",
    )
    harness = await Rig.start(emulator, database_url, timeline_emojis=("round_pushpin", "star"))
    try:
        await harness.start_incident()
        first, _ = await harness.driver.post_message(INCIDENT_CHANNEL, ALICE, "starred")
        second, _ = await harness.driver.post_message(INCIDENT_CHANNEL, BOB, "plain pushpin")
        await harness.processed((await harness.driver.react(INCIDENT_CHANNEL, first["ts"], BOB, "star")).event_id)
        await harness.processed((await harness.driver.react(INCIDENT_CHANNEL, second["ts"], ALICE, "pushpin")).event_id)
        assert texts(await harness.timeline()) == ["starred"]
        card = json.dumps(harness.bot_messages(INCIDENT_CHANNEL)[-1]["blocks"])
        assert ":round_pushpin: or :star:" in card, "the card tells people which reactions count"
    finally:
        await harness.stop()


async def test_old_event_ids_are_pruned_recent_ones_kept(rig: Rig) -> None:
    from datetime import timedelta

    await rig.start_incident()
    _, delivery = await rig.driver.post_message(INCIDENT_CHANNEL, ALICE, "kept")
    await rig.processed(delivery.event_id)
    assert await rig.bot.services.timeline.prune_event_log(timedelta(days=1)) == 0
    assert await rig.bot.services.timeline.prune_event_log(timedelta(0)) == 1
    assert await count(rig, ProcessedEvent) == 0
    assert await count(rig, Message) == 1, "pruning the event log touches nothing else"
