"""Documents name people and channels, from what the bot keeps in its database: with Slack
unreachable, after a profile change or a rename, and after a person left the workspace."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from bot.postmortem_document import mentioned_ids, render, template_environment
from slack_emulator import SlackEmulator
from storage import directory
from storage.db import create_engine, create_session_factory, migrate
from storage.models import Incident, KnownPerson
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, QUIET_CHANNEL, SIGNING_SECRET, TEST_START, Rig
from tests.test_cli import env, run

DUE = (TEST_START.date() + timedelta(days=14)).isoformat()  # the bot's clock starts at TEST_START
NOWHERE = "http://127.0.0.1:9/api/"  # the discard port: nothing answers there
RAW_IDS = re.compile(r"\b(UALICE0001|UBOB000001|UCAROL0001|CINCIDENT1|CQUIET0001)\b")

CONTENT = {
    "pm_summary": "Checkout failed for 47 minutes after a cache flag flip in deploy 4512.",
    "pm_users_affected": "~12% of checkout attempts",
    "pm_root_cause": "A config change disabled the cache's stampede protection; the DB saturated.",
    "pm_why_1": "The DB saturated because every request missed the cache at once.",
    "pm_why_2": "The stampede protection flag was off in the new config.",
    "pm_cause_category": "configuration",
    "pm_went_well": "Rollback took 4 minutes.",
    "pm_went_wrong": "The p99 alert fired 10 minutes late.",
}


async def export_offline(database_url: str, fmt: str) -> str:
    """`postmortem-bot export` with Slack unreachable (a token set, so nothing stops it asking)."""
    code, out, err = await run(
        "export",
        "--channel",
        INCIDENT_CHANNEL,
        "--format",
        fmt,
        environ=env(DATABASE_URL=database_url, SLACK_BOT_TOKEN="xoxb-unused", SLACK_API_URL=NOWHERE),
    )
    assert code == 0, err
    return out


async def incident_of(rig: Rig) -> Incident:
    async with rig.bot.services.timeline.sessions() as session:
        found = await session.scalar(select(Incident).order_by(Incident.id.desc()))
    assert found is not None
    return found


async def document_md(rig: Rig) -> str:
    """The document as the running bot would share it now."""
    return render(await rig.bot.services.postmortems.document(await incident_of(rig)), "md")


async def pinned_message(rig: Rig, author: str, text: str) -> dict:
    message, _ = await rig.driver.post_message(INCIDENT_CHANNEL, author, text)
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, message["ts"], ALICE)).event_id)
    return message


async def test_export_with_slack_unreachable_names_everyone(emulator: SlackEmulator, database_url: str) -> None:
    rig = await Rig.start(emulator, database_url, signing_secret=SIGNING_SECRET)
    try:
        await rig.start_incident("Checkout failing --sev 2")  # ALICE is the commander
        await pinned_message(rig, BOB, f"p99 at 4s, <@{CAROL}> can you look? <#{QUIET_CHANNEL}> is quiet")
        await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, "note rolled back deploy 4512")
        await rig.responses(1)
        view = await rig.open_postmortem(INCIDENT_CHANNEL, BOB)
        view = await rig.add_action_row(view, BOB)
        (key,) = rig.row_keys(view)
        edits = dict(
            CONTENT, **rig.row_edits(key, "Add a p99 latency alert on checkout at 800 ms for 5 min", CAROL, DUE)
        )
        answer = await rig.driver.submit_view(view, BOB, edits)
        assert answer.status == 200 and answer.text in ("", "{}"), answer.text

        async def shared() -> bool:
            return len(emulator.uploaded_files()) == 1

        await rig.eventually(shared)
    finally:
        await rig.stop()
    await emulator.stop()

    markdown = await export_offline(database_url, "md")
    assert "| Commander | alice |" in markdown and "| Authors | bob |" in markdown
    assert "| Channel | #inc-checkout |" in markdown
    assert "| bob | p99 at 4s, @carol can you look? #random is quiet |" in markdown
    assert "| carol | rolled back deploy 4512 |" in markdown
    assert "| Add a p99 latency alert on checkout at 800 ms for 5 min | carol |" in markdown
    assert not RAW_IDS.findall(markdown)
    html = await export_offline(database_url, "html")
    assert "#inc-checkout" in html and "@carol" in html and not RAW_IDS.findall(html)
    data = json.loads(await export_offline(database_url, "json"))
    # The contract keeps ids where it promised them; the names stand beside them.
    assert (data["channel"], data["commander"], data["authors"]) == (INCIDENT_CHANNEL, ALICE, [BOB])
    assert data["channel_name"] == "inc-checkout"
    assert data["user_names"] == {ALICE: "alice", BOB: "bob", CAROL: "carol"}


async def test_a_draft_exported_offline_names_people_learned_as_they_appeared(
    emulator: SlackEmulator, database_url: str
) -> None:
    """No document was rendered while Slack answered: the bot learned each name when the
    person first entered the incident (commander, a pinned message, a note, an owner)."""
    rig = await Rig.start(emulator, database_url, signing_secret=SIGNING_SECRET)
    try:
        await rig.start_incident("Checkout failing --sev 2")
        await pinned_message(rig, BOB, "p99 at 4s")
        await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, f"action <@{CAROL}|carol> {DUE} Add a p99 alert")
        await rig.responses(1)
    finally:
        await rig.stop()
    await emulator.stop()

    markdown = await export_offline(database_url, "md")
    assert "| Commander | alice |" in markdown and "| Channel | #inc-checkout |" in markdown
    assert "| bob | p99 at 4s |" in markdown and "| Add a p99 alert | carol |" in markdown
    assert not RAW_IDS.findall(markdown)


async def test_a_profile_change_and_a_channel_rename_reach_the_next_document(rig: Rig) -> None:
    await rig.start_incident()
    await pinned_message(rig, BOB, "p99 at 4s")
    before = await document_md(rig)
    assert "| bob | p99 at 4s |" in before

    await rig.processed((await rig.driver.change_profile(BOB, name="bobby", real_name="Bob Builder")).event_id)
    await rig.processed((await rig.driver.rename_channel(INCIDENT_CHANNEL, "inc-checkout-eu")).event_id)

    after = await document_md(rig)
    assert "| bobby | p99 at 4s |" in after and "| Channel | #inc-checkout-eu |" in after
    # What Slack said is kept: an export with Slack unreachable says the same.
    offline = await export_offline(rig.url, "md")
    assert "| bobby | p99 at 4s |" in offline and "| Channel | #inc-checkout-eu |" in offline


async def test_a_person_who_left_keeps_their_last_known_name(rig: Rig, emulator: SlackEmulator) -> None:
    await rig.start_incident()
    await pinned_message(rig, BOB, "p99 at 4s")
    await pinned_message(rig, CAROL, "rolling back")
    assert "| carol | rolling back |" in await document_md(rig)

    # Bob is deactivated (Slack says so with user_change); Carol's account is gone altogether.
    await rig.processed((await rig.driver.deactivate_user(BOB)).event_id)
    emulator.erase_user(CAROL)
    # A bot started since (nothing cached in memory) still names them both.
    later = await Rig.start(emulator, rig.url, signing_secret=SIGNING_SECRET)
    try:
        markdown = render(await later.bot.services.postmortems.document(await incident_of(later)), "md")
    finally:
        await later.stop()
    assert "| bob | p99 at 4s |" in markdown and "| carol | rolling back |" in markdown
    assert not RAW_IDS.findall(markdown)


async def test_what_is_kept_follows_slack_s_stamp_and_only_people_met(database_url: str) -> None:
    """An answer older than the one kept changes nothing; an erased profile keeps the names;
    a user_change about someone never met stores nothing."""
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_session_factory(engine)
    bob = {
        "user_id": BOB,
        "display_name": "bobby",
        "real_name": "Bob B",
        "handle": "bob",
        "tz": "Europe/Paris",
        "is_bot": False,
        "deleted": False,
        "slack_updated": 200,
    }
    try:
        async with sessions.begin() as session:
            await directory.remember_person(session, bob)
            await directory.remember_person(session, dict(bob, display_name="old bob", slack_updated=100))
            assert not await directory.change_person(session, dict(bob, display_name="older", slack_updated=150))
            erased = dict(bob, display_name="", real_name="", handle="", deleted=True, slack_updated=300)
            assert await directory.change_person(session, erased)
            assert not await directory.change_person(session, dict(bob, user_id=CAROL, slack_updated=400))
            await directory.remember_channel(session, INCIDENT_CHANNEL, "inc-checkout")
            assert not await directory.rename_channel(session, QUIET_CHANNEL, "random-2")
        async with sessions() as session:
            kept = await session.get(KnownPerson, BOB)
            assert (kept.label, kept.handle, kept.deleted, kept.slack_updated) == ("bobby", "bob", True, 300)
            assert await directory.people_named(session, [BOB, CAROL]) == {BOB: "bobby"}
            assert await directory.channels_named(session, [INCIDENT_CHANNEL, QUIET_CHANNEL]) == {
                INCIDENT_CHANNEL: "inc-checkout"
            }
    finally:
        await engine.dispose()


def test_documents_name_mentions_they_know_and_leave_other_text_alone() -> None:
    text = "@UCAROL0001 see #CQUIET0001, @UNKNOWN123 and #C5 at 09:00 UTC; mail a@UCAROL0001"
    assert mentioned_ids([text, None]) == ({"UCAROL0001", "UNKNOWN123"}, {"CQUIET0001"})
    doc = {
        "user_names": {CAROL: "carol"},
        "channel_names": {QUIET_CHANNEL: "random"},
        "timeline": [
            {
                "time": "2026-03-10T14:00:00Z",
                "user": CAROL,
                "text": text,
                "kind": "message",
                "files": [],
                "edited": False,
            }
        ],
    }
    jinja = template_environment()
    row = jinja.from_string("{{ doc.timeline[0].text | mentions }}").render(doc=doc)
    assert row == "@carol see #random, @UNKNOWN123 and #C5 at 09:00 UTC; mail a@UCAROL0001"
    channel = jinja.from_string("{{ doc.channel | channel }}")
    assert channel.render(doc=dict(doc, channel=QUIET_CHANNEL)) == "#random"
    assert channel.render(doc=dict(doc, channel=INCIDENT_CHANNEL)) == INCIDENT_CHANNEL
