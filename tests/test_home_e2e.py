"""App Home end to end: opened (app_home_opened), answered from its buttons, republished when
something changes, paged within Block Kit's 100 blocks; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot.ui.home import ITEMS_PER_PAGE
from storage.models import ActionItem, Nudge
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, Rig


def buttons(view: dict, action_id: str) -> list[str]:
    """The values of every button `action_id` in a view."""
    found = []
    for block in view["blocks"]:
        for element in block.get("elements") or ([block["accessory"]] if block.get("accessory") else []):
            if element.get("action_id") == action_id:
                found.append(element.get("value"))
    return found


async def home_of(rig: Rig, user: str, check=lambda view: True) -> dict:
    """The user's published Home once `check` holds for it."""

    async def published() -> dict | None:
        view = rig.emulator.home_view(user)
        return view if view is not None and check(view) else None

    return await rig.eventually(published)


async def add_item(rig: Rig, owner: str, days: int, title: str) -> None:
    before = len(rig.emulator.responses())
    due = (rig.today() + timedelta(days=days)).isoformat()
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{owner}|x> {due} {title}")
    assert "Action item added" in (await rig.responses(before + 1))[-1]["text"]


async def test_home_shows_what_is_owed_answers_in_place_and_refreshes(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 1")
    await add_item(rig, BOB, 9, "Add a p99 alert on checkout at 800 ms")
    # Assigned: Bob's Home is published without his opening it.
    home = await home_of(rig, BOB, lambda v: "p99 alert" in json.dumps(v))
    await add_item(rig, BOB, 2, "Roll back the pool size change")
    home = await home_of(rig, BOB, lambda v: "pool size" in json.dumps(v))

    publishes = len(rig.emulator.calls_to("views.publish"))
    delivery = await rig.driver.open_home(BOB)
    assert delivery.status == 200
    home = await home_of(rig, BOB, lambda v: len(rig.emulator.calls_to("views.publish")) > publishes)
    text = json.dumps(home)
    assert home["type"] == "home"
    assert text.index("Roll back the pool size") < text.index("Add a p99 alert"), "soonest due first"
    async with rig.bot.services.timeline.sessions() as session:
        items = {i.title: i for i in await session.scalars(select(ActionItem))}
    p99, pool = items["Add a p99 alert on checkout at 800 ms"], items["Roll back the pool size change"]
    assert sorted(buttons(home, "item_done")) == sorted([str(p99.id), str(pool.id)])
    assert "Checkout failing" in text and "SEV1" in text  # the incident, and the team's quarter

    # Alice commands the incident: it owes its resolution; Bob's items carry no buttons for her.
    await rig.driver.open_home(ALICE)
    alice = await home_of(rig, ALICE)
    assert buttons(alice, "item_done") == [] and buttons(alice, "incident_resolve") == [str(p99.incident_id)]
    assert "Open action items*\\n2" in json.dumps(alice)

    # Done, pressed on Home: the item is done and Bob's Home is published again without it.
    await rig.driver.click_view_button(home, BOB, "item_done", value=str(pool.id))
    home = await home_of(rig, BOB, lambda v: "pool size" not in json.dumps(v))
    assert buttons(home, "item_done") == [str(p99.id)]
    async with rig.bot.services.timeline.sessions() as session:
        assert (await session.get(ActionItem, pool.id)).status == "done"

    # Done elsewhere (the assignment DM's button): Home follows.
    async with rig.bot.services.timeline.sessions() as session:
        assert (await session.get(ActionItem, p99.id)).status == "open"
        assigned = await session.scalar(
            select(Nudge).where(Nudge.subject == f"action_item:{p99.id}", Nudge.status == "pending")
        )
    report = await rig.bot.services.nudges.sweep(assigned.not_before)
    assert report.sent == [f"action_item/action_item:{p99.id}/assigned"]
    dm = rig.emulator.open_dm(BOB)
    (message,) = [m for m in rig.emulator.messages(dm) if "p99 alert" in json.dumps(m.get("blocks"))]
    await rig.driver.click_message_button(dm, message["ts"], BOB, "item_done")
    home = await home_of(rig, BOB, lambda v: buttons(v, "item_done") == [])
    assert "nothing is waiting on you" in json.dumps(home)


async def test_a_long_list_pages_within_the_block_limit(rig: Rig) -> None:
    await rig.start_incident("Search slow --sev 2")
    incident = await rig.bot.services.timeline.current_incident(rig.emulator.team_id, INCIDENT_CHANNEL)
    now = rig.clock.now()
    async with rig.bot.services.timeline.sessions.begin() as session:
        for n in range(2 * ITEMS_PER_PAGE + 5):
            session.add(
                ActionItem(
                    team_id=rig.emulator.team_id,
                    incident_id=incident.id,
                    title=f"Item number {n:03d}",
                    owner_id=BOB,
                    due=rig.today() + timedelta(days=n - 3),  # the first three overdue
                    created_by=ALICE,
                    created_at=now,
                    updated_at=now,
                )
            )
    await rig.driver.open_home(BOB)
    first = await home_of(rig, BOB, lambda v: "Item number 000" in json.dumps(v))
    assert len(first["blocks"]) <= 100
    assert len(buttons(first, "item_done")) == ITEMS_PER_PAGE
    assert json.dumps(first).count("*Overdue*") == 3
    assert buttons(first, "home_page_next") == ["1"] and buttons(first, "home_page_prev") == []

    await rig.driver.click_view_button(first, BOB, "home_page_next")
    second = await home_of(rig, BOB, lambda v: "Item number 020" in json.dumps(v))
    assert "Item number 019" not in json.dumps(second) and len(second["blocks"]) <= 100
    assert buttons(second, "home_page_prev") == ["0"] and buttons(second, "home_page_next") == ["2"]
    await rig.driver.click_view_button(second, BOB, "home_page_next")
    last = await home_of(rig, BOB, lambda v: "Item number 044" in json.dumps(v))
    assert len(buttons(last, "item_done")) == 5 and buttons(last, "home_page_next") == []

    # The Messages tab opens the same event: nothing is drawn for it.
    before = len(rig.emulator.calls_to("views.publish"))
    delivery = await rig.driver.open_home(BOB, tab="messages")
    assert delivery.status == 200
    assert len(rig.emulator.calls_to("views.publish")) == before
