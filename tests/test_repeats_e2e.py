"""Repeats end to end: `/postmortem start` shows earlier incidents that look like this one, with
their open items, on the card; the review meeting's agenda lists the open items of earlier
incidents with the same cause; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update

from storage.models import ActionItem, Incident, KnownChannel, Nudge, Postmortem
from tests.conftest import ALICE, BOB, CAROL, INCIDENT_CHANNEL, Rig

T = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)


async def earlier_incidents(rig: Rig) -> dict[str, int]:
    """Five earlier incidents: four about checkout (by title, cause or channel), one not."""
    team = rig.emulator.team_id
    rows = [
        ("Checkout failing", "CEARLY0001", "inc-checkout-jan", "deployment", "a bad deploy of the cart service"),
        ("Payments declined", "CEARLY0002", "inc-payments", "deployment", "checkout called payments with a stale key"),
        ("Slow pages", "CEARLY0003", "inc-checkout-slow", "capacity", "pool exhausted"),
        ("Checkout 500s", "CEARLY0004", "inc-web", "configuration", "feature flag"),
        ("DNS resolution", "CEARLY0005", "inc-dns", "dependency_failure", "resolver down"),
    ]
    ids = {}
    async with rig.bot.services.timeline.sessions.begin() as session:
        for n, (title, channel, name, cause, root) in enumerate(rows):
            incident = Incident(
                team_id=team,
                channel_id=channel,
                title=title,
                severity=2,
                status="resolved",
                commander_id=ALICE,
                started_at=T + timedelta(days=n),
                resolved_at=T + timedelta(days=n, hours=2),
            )
            session.add(incident)
            session.add(KnownChannel(channel_id=channel, name=name))
            await session.flush()
            ids[title] = incident.id
            session.add(
                Postmortem(
                    team_id=team,
                    incident_id=incident.id,
                    status="published",
                    draft={"cause_category": cause, "root_cause": root},
                    updated_at=T,
                )
            )
            for title_, owner, status in (
                (f"Fix {title.lower()} for good", BOB, "open"),
                (f"Write the {title.lower()} runbook", CAROL, "done"),
            ):
                session.add(
                    ActionItem(
                        team_id=team,
                        incident_id=incident.id,
                        title=title_,
                        owner_id=owner,
                        due=date(2026, 2, 1),
                        status=status,
                        created_by=ALICE,
                        created_at=T,
                        updated_at=T,
                    )
                )
    return ids


async def test_start_shows_up_to_three_earlier_incidents_that_look_alike(rig: Rig) -> None:
    await earlier_incidents(rig)
    card = await rig.start_incident("Checkout failing again --sev 1")  # in #inc-checkout
    blocks = json.dumps(card["blocks"])
    assert blocks.count("Happened before?") == 3, blocks
    for title in ("Checkout failing", "Slow pages", "Checkout 500s"):  # title words, channel name
        assert f"Happened before?* {title}" in blocks
    assert "DNS resolution" not in blocks, "nothing alike"
    assert "Payments declined" not in blocks, "its cause names checkout, but three are more alike"
    assert "Fix checkout failing for good" in blocks and f"<@{BOB}>" in blocks, "the open items, with owners"
    assert "runbook" not in blocks, "done items are not listed"

    quiet = await rig.start_incident("Disk full on build agents", channel="CQUIET0001")
    assert "Happened before?" not in json.dumps(quiet["blocks"])


async def test_the_agenda_asks_whether_earlier_items_of_the_same_cause_are_done(rig: Rig) -> None:
    await earlier_incidents(rig)
    await rig.start_incident("Cart broken after release --sev 1")
    incident = await rig.bot.services.timeline.current_incident(rig.emulator.team_id, INCIDENT_CHANNEL)
    now = rig.clock.now()
    async with rig.bot.services.timeline.sessions.begin() as session:
        session.add(
            Postmortem(
                team_id=incident.team_id,
                incident_id=incident.id,
                status="in_review",
                draft={"cause_category": "deployment"},
                updated_at=now,
                submitted_at=now,
            )
        )
        await session.execute(
            update(Incident)
            .where(Incident.id == incident.id)
            .values(status="resolved", resolved_at=now, meeting_at=now + timedelta(days=2))
        )
    await rig.bot.services.nudges.plan_incident(incident.id)
    async with rig.bot.services.timeline.sessions() as session:
        agenda = await session.scalar(select(Nudge).where(Nudge.kind == "meeting_agenda"))
    report = await rig.bot.services.nudges.sweep(agenda.not_before)
    assert f"meeting_agenda/incident:{incident.id}/{agenda.slot}" in report.sent
    (posted,) = [m for m in rig.bot_messages(INCIDENT_CHANNEL) if "agenda" in m.get("text", "").lower()]
    blocks = json.dumps(posted["blocks"])
    assert "Is it done yet?" in blocks
    assert "Fix checkout failing for good" in blocks and "Fix payments declined for good" in blocks  # deployment
    assert "Fix slow pages for good" not in blocks and "runbook" not in blocks  # another cause; done
