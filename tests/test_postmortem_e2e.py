"""Resolve to document, end to end: the modal through the signed driver, the emulator's
views, the stored revisions and action items, the shared summary and document."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import FixedClock
from bot.nudges import item_subject
from slack_emulator import SlackEmulator
from storage.models import ActionItem, Incident, Nudge, Postmortem, PostmortemRevision
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, PAGERBOT, SIGNING_SECRET, TEST_START, Rig

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

    assert blocks["pm_impact_duration"]["element"]["initial_value"] == humanize(
        resolved.resolved_at - resolved.started_at
    )
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
        views = [
            v for v in rig.emulator.views() if v.get("callback_id") == "postmortem_modal" and v["id"] != view["id"]
        ]
        return views[-1] if views else None

    again = await rig.eventually(reopened)
    values = {
        b["block_id"].split(".")[0]: b.get("element", {}).get("initial_value")
        for b in again["blocks"]
        if b["type"] == "input"
    }
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
    assert (item.title, item.owner_id, item.due.isoformat(), item.status) == (
        "Improve monitoring",
        CAROL,
        FUTURE,
        "open",
    )


async def submit_clean(rig: Rig, user: str = ALICE, extra: dict | None = None) -> None:
    view = await open_via_command(rig, user)
    view = await add_row(rig, view)
    view = await add_row(rig, view)
    keys = row_keys(view)
    edits = dict(GOOD, **(extra or {}))
    edits.update(
        row_edits(
            keys[-2],
            "Add a p99 latency alert on checkout at 800 ms for 5 min",
            BOB,
            FUTURE,
            priority="P1",
            type="prevent",
        )
    )
    edits.update(
        row_edits(
            keys[-1],
            "Set a default for the stampede flag in the config schema, checked in CI",
            CAROL,
            FUTURE,
            ticket="https://tracker.example.com/OPS-42",
        )
    )
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
    await rig.driver.slash_command(
        INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {FUTURE} Add a load test for checkout at 2x peak"
    )
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{PAGERBOT}|pagerbot> {FUTURE} Do things")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <!subteam^S1|@oncall> {FUTURE} Do things")
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {PAST} Too late")
    texts = []
    for delivery_answer in await rig.responses(3):
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
            script,
            "export",
            "--channel",
            INCIDENT_CHANNEL,
            "--format",
            fmt,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
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


# --- action items however they were added (issue 9, item 3) ---------------------------------


def due_in(rig: Rig, days: int) -> str:
    """A due date `days` after the bot's own today: every date the tests below type comes
    from here, never from the machine's calendar."""
    return (rig.today() + timedelta(days=days)).isoformat()


POOL_ALERT = "Add an alert on pool use above 80%"


async def add_by_command(rig: Rig, owner: str, due: str, title: str) -> ActionItem:
    """`/postmortem action` as Alice; returns the stored item."""
    before = await count(rig, ActionItem)
    delivery = await rig.driver.slash_command(
        INCIDENT_CHANNEL, ALICE, f"action <@{owner}|{owner.lower()}> {due} {title}"
    )
    assert delivery.status == 200, delivery.text

    async def added() -> ActionItem | None:
        async with rig.bot.services.timeline.sessions() as session:
            items = list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))
        return items[-1] if len(items) > before else None

    return await rig.eventually(added)


def form_rows(view: dict) -> list[dict]:
    """The action-item rows a modal shows, as a person reads them."""
    rows = []
    for key in row_keys(view):
        element = {
            b["block_id"].split(".")[0].rsplit("_", 1)[1]: b["element"]
            for b in view["blocks"]
            if b.get("block_id", "").startswith(f"ai_{key}_") and b["type"] == "input"
        }
        rows.append(
            {
                "key": key,
                "title": element["title"].get("initial_value"),
                "owner": element["owner"].get("initial_user"),
                "due": element["due"].get("initial_date"),
                "priority": (element["priority"].get("initial_option") or {}).get("value"),
                "type": (element["type"].get("initial_option") or {}).get("value"),
                "ticket": element["ticket"].get("initial_value"),
            }
        )
    return rows


async def stored_items(rig: Rig) -> list[ActionItem]:
    async with rig.bot.services.timeline.sessions() as session:
        return list(await session.scalars(select(ActionItem).order_by(ActionItem.id)))


async def item_nudges(rig: Rig, item_id: int) -> list[Nudge]:
    async with rig.bot.services.timeline.sessions() as session:
        return list(
            await session.scalars(select(Nudge).where(Nudge.subject == item_subject(item_id)).order_by(Nudge.id))
        )


async def submitted(rig: Rig, revision: int, by: str = ALICE) -> None:
    """Wait for the submitter's receipt of `revision`: the last thing a submission does."""

    async def receipt() -> bool:
        return any(
            f"revision {revision} " in m.get("text", "") for m in rig.emulator.messages(rig.emulator.open_dm(by))
        )

    await rig.eventually(receipt)


async def test_an_item_added_before_resolving_is_in_the_form_and_stays_one_item(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    due = due_in(rig, 14)
    item = await add_by_command(rig, BOB, due, POOL_ALERT)
    (assigned,) = await rig.eventually(lambda: item_nudges(rig, item.id))

    view = await open_via_command(rig)
    assert form_rows(view) == [
        {
            "key": f"i{item.id}",
            "title": POOL_ALERT,
            "owner": BOB,
            "due": due,
            "priority": "P2",
            "type": "prevent",
            "ticket": None,
        }
    ]
    answer = await rig.driver.submit_view(view, ALICE, GOOD)
    assert answer.status == 200 and answer.text in ("", "{}"), f"no warning, no error: {answer.text}"
    await submitted(rig, 1)

    (kept,) = await stored_items(rig)
    assert (kept.id, kept.title, kept.owner_id, kept.due.isoformat()) == (item.id, POOL_ALERT, BOB, due)
    (again,) = await item_nudges(rig, item.id)
    assert (again.id, again.slot, again.status) == (assigned.id, "assigned", "pending"), "one assignment DM, still"


async def test_removing_a_stored_item_from_the_form_removes_it_and_its_reminders(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    item = await add_by_command(rig, BOB, due_in(rig, 14), POOL_ALERT)
    await rig.eventually(lambda: item_nudges(rig, item.id))
    view = await open_via_command(rig)
    view = await rig.remove_action_row(view, ALICE, f"i{item.id}")
    assert form_rows(view) == []
    assert await count(rig, ActionItem) == 1, "removed when the form is submitted, not before"

    answer = (await rig.driver.submit_view(view, ALICE, GOOD)).json()
    assert answer["response_action"] == "push" and "no action items" in json.dumps(answer["view"]), "now it is true"
    await rig.driver.submit_view(dict(answer["view"], id="VPUSHED001", state={"values": {}}), ALICE)
    await submitted(rig, 1)
    assert await stored_items(rig) == []
    assert [n.status for n in await item_nudges(rig, item.id)] == ["cancelled"]
    assert form_rows(await open_via_command(rig)) == []


async def test_an_item_added_while_a_form_is_open_survives_that_form(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    await submit_clean(rig)
    first = [(i.title, i.owner_id) for i in await stored_items(rig)]
    stale = await open_via_command(rig, BOB)
    late = await add_by_command(rig, CAROL, due_in(rig, 21), POOL_ALERT)
    # Closing the form that was open before the item existed keeps its draft, and the item.
    assert (await rig.driver.close_view(stale, BOB, {"pm_lessons": "Alerts on pools"})).status == 200

    async def draft_saved() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            return (await session.scalar(select(Postmortem.draft)))["lessons"] == "Alerts on pools"

    await rig.eventually(draft_saved)
    view = await open_via_command(rig, CAROL)
    rows = form_rows(view)
    assert [(r["title"], r["owner"]) for r in rows] == first + [(POOL_ALERT, CAROL)]
    assert rows[-1]["key"] == f"i{late.id}" and rows[-1]["due"] == due_in(rig, 21)

    # Submitting the stale form (which never showed it) keeps the item too.
    assert (await rig.driver.submit_view(stale, BOB, GOOD)).status == 200
    await submitted(rig, 2, by=BOB)
    assert [(i.title, i.owner_id) for i in await stored_items(rig)] == first + [(POOL_ALERT, CAROL)]
    assert [r["key"] for r in form_rows(await open_via_command(rig))] == [r["key"] for r in rows]


async def test_a_draft_keeps_its_edits_and_shows_what_changed_elsewhere(rig: Rig) -> None:
    from bot.action_items import Answer

    await rig.start_incident("Checkout failing --sev 2")
    item = await add_by_command(rig, BOB, due_in(rig, 14), "Add an alert on pool use")
    view = await open_via_command(rig)
    key = f"i{item.id}"
    await rig.driver.close_view(view, ALICE, {f"ai_{key}_title": POOL_ALERT, f"ai_{key}_priority": "P1"})

    async def draft_saved() -> bool:
        async with rig.bot.services.timeline.sessions() as session:
            return POOL_ALERT in json.dumps(await session.scalar(select(Postmortem.draft)))

    await rig.eventually(draft_saved)
    # Meanwhile the owner moves the due date from the DM.
    await rig.bot.services.action_items.answer(
        rig.emulator.team_id, item.id, BOB, Answer(kind="change_due", due=date.fromisoformat(due_in(rig, 30)))
    )
    (row,) = form_rows(await open_via_command(rig))
    assert (row["title"], row["priority"], row["due"], row["owner"]) == (POOL_ALERT, "P1", due_in(rig, 30), BOB)
    assert await count(rig, ActionItem) == 1


async def test_owner_changed_in_the_form_is_a_new_assignment(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 2")
    item = await add_by_command(rig, BOB, due_in(rig, 14), POOL_ALERT)
    (assigned,) = await rig.eventually(lambda: item_nudges(rig, item.id))
    await rig.bot.services.nudges.sweep(now=assigned.not_before)
    assert [(n.slot, n.status) for n in await item_nudges(rig, item.id)][0] == ("assigned", "sent")

    view = await open_via_command(rig)
    edits = dict(GOOD, **{f"ai_i{item.id}_owner": CAROL})
    assert (await rig.driver.submit_view(view, ALICE, edits)).text in ("", "{}")
    await submitted(rig, 1)
    (kept,) = await stored_items(rig)
    assert (kept.id, kept.owner_id) == (item.id, CAROL)
    pending = [(n.slot, n.recipient) for n in await item_nudges(rig, item.id) if n.status == "pending"]
    assert pending == [("assigned", CAROL)]


async def test_more_stored_items_than_the_form_holds_are_listed_and_kept(rig: Rig) -> None:
    from bot.ui.postmortem_modal import MAX_ACTION_ROWS

    await rig.start_incident("Checkout failing --sev 2")
    titles = [f"Add a saturation alert for pool {n} at 80%" for n in range(MAX_ACTION_ROWS + 2)]
    for title in titles:
        await add_by_command(rig, BOB, due_in(rig, 14), title)
    view = await open_via_command(rig)
    assert len(view["blocks"]) <= 100
    assert [r["title"] for r in form_rows(view)] == titles[:MAX_ACTION_ROWS]
    rest = json.dumps(view["blocks"][-1])
    assert "2 more action items" in rest and titles[-2] in rest and titles[-1] in rest

    view = await rig.remove_action_row(view, ALICE, form_rows(view)[0]["key"])
    assert [r["title"] for r in form_rows(view)] == titles[1 : MAX_ACTION_ROWS + 1]
    answer = (await rig.driver.submit_view(view, ALICE, GOOD)).json()
    assert "no action items" not in json.dumps(answer)
    await rig.driver.submit_view(dict(answer["view"], id="VPUSHED001", state={"values": {}}), ALICE)
    await submitted(rig, 1)
    assert [i.title for i in await stored_items(rig)] == titles[1:]


# A Tuesday afternoon in Paris (Bob's working hours), on a clock the test moves by hand.
TUESDAY = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


@pytest.fixture
async def clocked_rig(emulator: SlackEmulator, database_url: str) -> Any:
    harness = await Rig.start(emulator, database_url, clock=FixedClock(TUESDAY), signing_secret=SIGNING_SECRET)
    try:
        yield harness
    finally:
        await harness.stop()


async def test_resubmitting_replans_an_items_reminders_only_when_its_owner_or_due_date_changed(
    clocked_rig: Rig,
) -> None:
    rig = clocked_rig
    clock = rig.bot.services.postmortems.clock
    await rig.start_incident("Checkout failing --sev 2")
    item = await add_by_command(rig, BOB, due_in(rig, 14), "Add an alert on pool use")
    (assigned,) = await rig.eventually(lambda: item_nudges(rig, item.id))
    assert assigned.not_before == TUESDAY

    clock.set(TUESDAY + timedelta(minutes=30))
    view = await open_via_command(rig)
    edits = dict(GOOD, **{f"ai_i{item.id}_title": POOL_ALERT, f"ai_i{item.id}_priority": "P1"})
    assert (await rig.driver.submit_view(view, ALICE, edits)).text in ("", "{}")
    await submitted(rig, 1)
    (kept,) = await stored_items(rig)
    assert (kept.id, kept.title, kept.priority) == (item.id, POOL_ALERT, "P1"), "updated in place"
    (same,) = await item_nudges(rig, item.id)
    assert (same.id, same.status, same.not_before) == (assigned.id, "pending", TUESDAY), "not planned again"

    clock.set(TUESDAY + timedelta(hours=1))
    view = await open_via_command(rig)
    assert (await rig.driver.submit_view(view, ALICE, {f"ai_i{item.id}_due": due_in(rig, 20)})).status == 200
    await submitted(rig, 2)
    (kept,) = await stored_items(rig)
    assert kept.due.isoformat() == due_in(rig, 20)
    (moved,) = await item_nudges(rig, item.id)
    assert (moved.status, moved.not_before) == ("pending", TUESDAY + timedelta(hours=1)), (
        "a new due date is planned from now"
    )
