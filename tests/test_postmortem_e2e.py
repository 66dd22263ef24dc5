"""Resolve to document, end to end: the modal through the signed driver, the emulator's
views, the stored revisions and action items, the shared summary and document."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from storage.models import ActionItem, Incident, Postmortem, PostmortemRevision
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, PAGERBOT, TEST_START, Rig

FUTURE = (TEST_START.date() + timedelta(days=14)).isoformat()
PAST = (TEST_START.date() - timedelta(days=3)).isoformat()

GOOD = {
    "pm_summary": "Checkout failed for 47 minutes after a cache flag flip in deploy 4512.",
    "pm_users_affected": "~12% of checkout attempts",
    "pm_sla_breached": "yes",
    "pm_root_cause": "A config change disabled the cache's stampede protection; the DB saturated.",
    "pm_why_1": "The DB saturated because every request missed the cache at once.",
    "pm_why_2": "The stampede protection flag was off in the new config.",
    "pm_why_3": "The config schema has no default for the flag.",
    "pm_cause_category": "configuration",
    "pm_went_well": "Rollback took 4 minutes.",
    "pm_went_wrong": "The p99 alert fired 10 minutes late.",
}


async def count(rig: Rig, model: type, *where: Any) -> int:
    async with rig.bot.services.timeline.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def latest_view(rig: Rig, callback_id: str = "postmortem_modal") -> dict:
    return await rig.latest_view(callback_id)


async def open_via_command(rig: Rig, user: str = ALICE) -> dict:
    return await rig.open_postmortem(INCIDENT_CHANNEL, user)


async def add_row(rig: Rig, view: dict, edits: dict | None = None) -> dict:
    return await rig.add_action_row(view, ALICE, edits)


row_keys = Rig.row_keys
row_edits = Rig.row_edits


async def incident(rig: Rig) -> Incident:
    async with rig.bot.services.timeline.sessions() as session:
        return await session.scalar(select(Incident))


async def test_resolve_opens_the_modal_at_once_and_marks_the_incident_resolved(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 1")
    view = await open_via_command(rig)
    first_view_call = rig.emulator.calls_to("views.open")[0]
    assert first_view_call["ok"], "the trigger id was used while it was fresh"
    # Prefilled from what the bot knows.
    blocks = {b.get("block_id", "").split(".")[0]: b for b in view["blocks"]}
    assert blocks["pm_title"]["element"]["initial_value"] == "Checkout failing"
    assert blocks["pm_severity"]["element"]["initial_option"]["value"] in ("1", "SEV1")
    resolved = await incident(rig)
    from bot.postmortems import humanize

    assert blocks["pm_impact_duration"]["element"]["initial_value"] == humanize(resolved.resolved_at - resolved.started_at)
    assert "Declared" in json.dumps(view["blocks"][0]) and "Resolved" in json.dumps(view["blocks"][0])
    assert len(view["blocks"]) <= 100 and len(view["private_metadata"]) < 100

    row = await incident(rig)
    assert row.status == "resolved" and row.resolved_at is not None
    items = await rig.timeline()
    assert items[-1].kind == "lifecycle" and items[-1].text.startswith("Incident resolved after")
    card = rig.emulator.message(INCIDENT_CHANNEL, row.card_ts)
    assert "Resolved" in json.dumps(card["blocks"]) and "postmortem_continue" in json.dumps(card["blocks"])


async def test_card_resolve_button_opens_the_same_modal(rig: Rig) -> None:
    card = await rig.start_incident()
    assert (await rig.driver.click_message_button(INCIDENT_CHANNEL, card["ts"], BOB, "incident_resolve")).status == 200
    view = await latest_view(rig)
    assert view["callback_id"] == "postmortem_modal"
    assert (await incident(rig)).status == "resolved"


async def test_closing_keeps_a_draft_and_continue_reopens_it_filled_in(rig: Rig) -> None:
    await rig.start_incident()
    view = await open_via_command(rig)
    assert (await rig.driver.close_view(view, BOB, {"pm_summary": "half written", "pm_why_1": "because"})).status == 200

    async def saved() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            draft = await session.scalar(select(Postmortem.draft))
        return draft is not None and draft.get("summary") == "half written"

    await rig.eventually(saved)
    card_ts = (await incident(rig)).card_ts
    card = rig.emulator.message(INCIDENT_CHANNEL, card_ts)
    assert "Continue post-mortem" in json.dumps(card["blocks"])
    await rig.driver.click_message_button(INCIDENT_CHANNEL, card_ts, CAROL, "postmortem_continue")

    async def reopened() -> dict | None:
        views = [v for v in rig.emulator.views() if v.get("callback_id") == "postmortem_modal" and v["id"] != view["id"]]
        return views[-1] if views else None

    again = await rig.eventually(reopened)
    values = {b["block_id"].split(".")[0]: b.get("element", {}).get("initial_value") for b in again["blocks"] if b["type"] == "input"}
    assert values["pm_summary"] == "half written" and values["pm_why_1"] == "because"
    assert await count(rig, PostmortemRevision) == 0, "a draft is not a submission"


async def test_rows_are_added_and_removed_and_typed_text_survives(rig: Rig) -> None:
    await rig.start_incident()
    view = await open_via_command(rig)
    view = await add_row(rig, view, {"pm_summary": "typed before adding"})
    (key,) = row_keys(view)
    view = await add_row(rig, view, row_edits(key, "Add a stampede test in CI", BOB, FUTURE))
    assert len(row_keys(view)) == 2
    summary = next(b for b in view["blocks"] if b.get("block_id", "").startswith("pm_summary"))
    assert summary["element"]["initial_value"] == "typed before adding"
    first_title = next(b for b in view["blocks"] if b.get("block_id", "").startswith(f"ai_{key}_title"))
    assert first_title["element"]["initial_value"] == "Add a stampede test in CI"

    view = await rig.remove_action_row(view, ALICE, key)
    assert key not in row_keys(view) and len(row_keys(view)) == 1


async def test_adding_rows_stops_before_slack_limits(rig: Rig) -> None:
    await rig.start_incident()
    view = await open_via_command(rig)
    for _ in range(8):
        view = await add_row(rig, view)
    assert len(row_keys(view)) == 8 and len(view["blocks"]) <= 100
    assert not any(
        e.get("action_id") == "pm_add_action_item" for b in view["blocks"] for e in b.get("elements") or []
    ), "no Add button once the form is full"
    assert all(call["ok"] for call in rig.emulator.calls_to("views.update"))


async def test_submission_errors_come_back_on_the_fields(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 1")
    view = await open_via_command(rig)
    view = await add_row(rig, view)
    view = await add_row(rig, view)
    first, second = row_keys(view)
    edits = {"pm_root_cause": None}
    edits.update(row_edits(first, "Add a p99 alert at 800 ms", BOB, PAST))
    edits.update(row_edits(second, "Page the DB on-call on saturation", PAGERBOT, FUTURE))
    answer = (await rig.driver.submit_view(view, ALICE, edits)).json()
    assert answer["response_action"] == "errors"
    errors = {k.split(".")[0]: v for k, v in answer["errors"].items()}
    assert set(errors) == {"pm_root_cause", f"ai_{first}_due", f"ai_{second}_owner"}
    assert "past" in errors[f"ai_{first}_due"] and "bot" in errors[f"ai_{second}_owner"]
    assert all(k in {b.get("block_id") for b in view["blocks"]} for k in answer["errors"]), "errors name real blocks"
    assert await count(rig, PostmortemRevision) == 0 and await count(rig, ActionItem) == 0


async def test_quality_warnings_can_be_accepted_and_the_submission_lands(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    view = await open_via_command(rig)
    view = await add_row(rig, view)
    (key,) = row_keys(view)
    edits = dict(GOOD, pm_went_wrong="<@UBOB000001> failed to check the config before deploying")
    edits.update(row_edits(key, "Improve monitoring", CAROL, FUTURE))
    answer = (await rig.driver.submit_view(view, ALICE, edits)).json()
    assert answer["response_action"] == "push"
    warnings = answer["view"]
    assert warnings["callback_id"] == "postmortem_warnings"
    text = json.dumps(warnings["blocks"])
    assert "failed to" in text and "Improve monitoring" in text
    assert await count(rig, PostmortemRevision) == 0, "nothing is submitted until the author decides"

    async def staged() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            return await session.scalar(select(Postmortem.pending_submitter)) == ALICE

    await rig.eventually(staged)
    pushed = dict(warnings, id="VPUSHED001", state={"values": {}})
    answer = await rig.driver.submit_view(pushed, ALICE)
    assert answer.json() == {"response_action": "clear"}

    async def stored() -> bool:
        return await count(rig, PostmortemRevision) == 1

    await rig.eventually(stored)
    async with rig.bot.services.timeline.sessions() as session:
        item = await session.scalar(select(ActionItem))
    assert (item.title, item.owner_id, item.due.isoformat(), item.status) == ("Improve monitoring", CAROL, FUTURE, "open")


async def submit_clean(rig: Rig, user: str = ALICE, extra: dict | None = None) -> None:
    view = await open_via_command(rig, user)
    view = await add_row(rig, view)
    view = await add_row(rig, view)
    keys = row_keys(view)
    edits = dict(GOOD, **(extra or {}))
    edits.update(row_edits(keys[-2], "Add a p99 latency alert on checkout at 800 ms for 5 min", BOB, FUTURE, priority="P1", type="prevent"))
    edits.update(row_edits(keys[-1], "Set a default for the stampede flag in the config schema, checked in CI", CAROL, FUTURE, ticket="https://tracker.example.com/OPS-42"))
    before = await count(rig, PostmortemRevision)
    answer = await rig.driver.submit_view(view, user, edits)
    assert answer.status == 200 and answer.text in ("", "{}"), answer.text

    async def stored() -> bool:
        return await count(rig, PostmortemRevision) == before + 1

    await rig.eventually(stored)


async def test_clean_submission_is_stored_shared_and_put_in_review(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    await submit_clean(rig)

    async def shared() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            return await session.scalar(select(Postmortem.file_id)) is not None

    await rig.eventually(shared)
    (document,) = rig.emulator.uploaded_files()
    markdown = document["content"].decode()
    assert document["channel"] == INCIDENT_CHANNEL and document["filename"].endswith(".md")
    for section in ("Summary", "Impact", "Timeline", "Root cause", "What went well", "Action items"):
        assert section in markdown
    assert "Add a p99 latency alert on checkout at 800 ms for 5 min" in markdown
    summary = next(m for m in rig.bot_messages(INCIDENT_CHANNEL) if "Post-mortem submitted" in m.get("text", ""))
    assert f"<@{BOB}>" in json.dumps(summary["blocks"]) and "postmortem_publish" in json.dumps(summary["blocks"])
    async with rig.bot.services.timeline.sessions() as session:
        postmortem = await session.scalar(select(Postmortem))
        items = list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))
    assert postmortem.status == "in_review" and postmortem.summary_ts == summary["ts"]
    assert [(i.owner_id, i.priority) for i in items] == [(BOB, "P1"), (CAROL, "P2")]
    assert items[1].ticket_url == "https://tracker.example.com/OPS-42"

    async def receipt() -> str | None:
        dm = rig.emulator.messages(rig.emulator.open_dm(ALICE))
        return dm[-1]["text"] if dm else None

    assert "revision 1" in await rig.eventually(receipt)


async def test_two_contributors_latest_wins_every_revision_kept_items_not_duplicated(rig: Rig) -> None:
    await rig.start_incident()
    await submit_clean(rig, ALICE)
    view = await open_via_command(rig, BOB)
    answer = await rig.driver.submit_view(view, BOB, {"pm_summary": "Bob's better summary"})
    assert answer.status == 200

    async def second() -> bool:
        return await count(rig, PostmortemRevision) == 2

    await rig.eventually(second)
    async with rig.bot.services.timeline.sessions() as session:
        revisions = list(await session.scalars(select(PostmortemRevision).order_by(PostmortemRevision.number)))
        draft = await session.scalar(select(Postmortem.draft))
    assert [(r.number, r.author_id) for r in revisions] == [(1, ALICE), (2, BOB)]
    assert revisions[0].content["summary"] == GOOD["pm_summary"] and draft["summary"] == "Bob's better summary"
    assert await count(rig, ActionItem) == 2, "resubmitting updates the items, never duplicates them"


async def test_publish_moves_to_published_and_shares_the_final_render(rig: Rig) -> None:
    await rig.start_incident()
    await submit_clean(rig)
    await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, "publish")

    async def published() -> bool:
        return len(rig.emulator.uploaded_files()) == 2

    await rig.eventually(published)
    async with rig.bot.services.timeline.sessions() as session:
        postmortem = await session.scalar(select(Postmortem))
    assert postmortem.status == "published" and postmortem.published_at is not None
    assert "| Post-mortem status | Published |" in rig.emulator.uploaded_files()[-1]["content"].decode()
    await rig.driver.slash_command(INCIDENT_CHANNEL, CAROL, "publish")
    answers = await rig.responses(1)
    assert "already published" in answers[-1]["text"]


async def test_action_command_adds_an_item_with_one_human_owner(rig: Rig) -> None:
    await rig.start_incident()
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {FUTURE} Add a load test for checkout at 2x peak")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{PAGERBOT}|pagerbot> {FUTURE} Do things")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <!subteam^S1|@oncall> {FUTURE} Do things")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {PAST} Too late")
    texts = []
    for delivery_answer in (await rig.responses(3)):
        texts.append(delivery_answer["text"])
    assert any("Action item added" in t for t in texts)
    assert any("is a bot" in t for t in texts) and any("in the past" in t for t in texts)
    async with rig.bot.services.timeline.sessions() as session:
        items = list(await session.scalars(select(ActionItem)))
    assert [(i.owner_id, i.title) for i in items] == [(BOB, "Add a load test for checkout at 2x peak")]


async def test_a_failed_upload_loses_nothing_and_the_author_is_told(rig: Rig) -> None:
    await rig.start_incident()
    rig.emulator.fail("files.completeUploadExternal", error="not_in_channel", times=1)
    await submit_clean(rig)

    async def told() -> str | None:
        dm = rig.emulator.messages(rig.emulator.open_dm(ALICE))
        return dm[-1]["text"] if dm else None

    receipt = await rig.eventually(told)
    assert "stored" in receipt and "not_in_channel" in receipt and "export" in receipt
    assert await count(rig, PostmortemRevision) == 1
    # Sharing again works once Slack agrees.
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "publish")

    async def shared() -> bool:
        return len(rig.emulator.uploaded_files()) == 1

    await rig.eventually(shared)


async def test_export_renders_md_html_and_json_with_everything(rig: Rig) -> None:
    import asyncio
    import os
    import sys
    from pathlib import Path

    await rig.start_incident()
    await submit_clean(rig, extra={"pm_went_wrong": "<script>alert(1)</script> & | pipes"})
    script = str(Path(sys.executable).parent / "postmortem-bot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | {"DATABASE_URL": rig.url}
    outputs = {}
    for fmt in ("md", "html", "json"):
        process = await asyncio.create_subprocess_exec(
            script, "export", "--channel", INCIDENT_CHANNEL, "--format", fmt, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        outputs[fmt] = out.decode()
    doc = json.loads(outputs["json"])
    assert doc["postmortem_status"] == "in_review" and doc["root_cause"].startswith("A config change")
    assert [(a["owner"], a["status"]) for a in doc["action_items"]] == [(BOB, "open"), (CAROL, "open")]
    assert all({"title", "owner", "due", "priority", "status"} <= set(a) for a in doc["action_items"])
    assert "<script>" not in outputs["html"] and "&lt;script&gt;" in outputs["html"]
    # Markdown: raw HTML is escaped so renderers show it as text.
    assert "\\<script>alert(1)\\</script> & | pipes" in outputs["md"]
