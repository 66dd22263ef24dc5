"""The quarterly review end to end: a synthetic quarter posted once by `postmortem-bot sweep --at`
(two sweepers at once, and again later), its chart a real PNG; `/postmortem review` and
`/postmortem stats` giving the same numbers; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image

from storage.models import ActionItem, Incident, Postmortem
from tests.conftest import ALICE, BOB, CAROL, QUIET_CHANNEL, Rig

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
REVIEW_CHANNEL = "CREVIEW001"


async def sweep_at(rig: Rig, at: datetime) -> list[str]:
    """One `postmortem-bot sweep --at` run, with the review channel configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "POSTMORTEM_"))} | {
        "SLACK_BOT_TOKEN": rig.emulator.bot_token,
        "SLACK_API_URL": rig.emulator.api_url,
        "DATABASE_URL": rig.url,
        "POSTMORTEM_REVIEW_CHANNEL": REVIEW_CHANNEL,
    }
    process = await asyncio.create_subprocess_exec(
        SCRIPT, "sweep", "--at", at.isoformat(), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-3000:]
    return [line for line in out.decode().splitlines() if line.startswith(("sent ", "recovered ", "failed ", "retry "))]


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def a_quarter_of_incidents(rig: Rig) -> None:
    """Q1 2026 (all before the rig's 10 March): six incidents, three of them checkout
    deployments; Q4 2025: two. Items done on time, late, won't do, open past due."""
    team = rig.emulator.team_id
    rows = [
        # title, severity, started, hours to resolve (None: active), cause, hours to post-mortem, published
        ("Checkout failing", 1, date(2026, 1, 5), 2, "deployment", 20, True),
        ("Checkout slow", 2, date(2026, 1, 20), 4, "deployment", 30, False),
        ("Checkout errors after deploy", 2, date(2026, 2, 3), 1, "deployment", 10, True),
        ("Search index stale", 3, date(2026, 2, 10), 3, "capacity", 40, False),
        ("Login timeouts", 1, date(2026, 3, 2), 1, None, None, False),
        ("Payments webhook lag", 3, date(2026, 3, 5), None, None, None, False),
        ("Checkout failing", 2, date(2025, 11, 5), 5, "configuration", 24, True),
        ("DNS resolution", 1, date(2025, 10, 10), 3, None, None, False),
    ]
    async with rig.bot.services.timeline.sessions.begin() as session:
        incidents = []
        for n, (title, sev, day, resolve, cause, to_pm, published) in enumerate(rows):
            started = at(day)
            resolved = started + timedelta(hours=resolve) if resolve is not None else None
            incident = Incident(
                team_id=team,
                channel_id=f"CSYNTH{n:04d}",
                title=title,
                severity=sev,
                status="resolved" if resolved else "active",
                commander_id=ALICE,
                started_at=started,
                resolved_at=resolved,
            )
            session.add(incident)
            await session.flush()
            incidents.append(incident)
            if cause is not None and resolved is not None:
                submitted = resolved + timedelta(hours=to_pm)
                session.add(
                    Postmortem(
                        team_id=team,
                        incident_id=incident.id,
                        status="published" if published else "in_review",
                        draft={"cause_category": cause},
                        updated_at=submitted,
                        submitted_at=submitted,
                        published_at=submitted if published else None,
                    )
                )
        items = [
            (0, "Gate deploys on canary errors", BOB, date(2026, 1, 20), "done", date(2026, 1, 15)),
            (0, "Alert on checkout p99", CAROL, date(2026, 1, 20), "done", date(2026, 2, 1)),
            (1, "Rewrite the checkout service", BOB, date(2026, 2, 1), "wont_do", date(2026, 1, 25)),
            (2, "Automatic rollback on 5xx", BOB, date(2026, 2, 20), "open", date(2026, 2, 4)),
            (3, "Size the index workers", CAROL, date(2026, 4, 30), "open", date(2026, 2, 11)),
            (6, "Validate config in CI", CAROL, date(2025, 12, 1), "in_progress", date(2025, 11, 6)),
        ]
        for index, title, owner, due, status, changed in items:
            session.add(
                ActionItem(
                    team_id=team,
                    incident_id=incidents[index].id,
                    title=title,
                    owner_id=owner,
                    due=due,
                    status=status,
                    created_by=ALICE,
                    created_at=incidents[index].started_at,
                    updated_at=at(changed),
                )
            )


def posted_reviews(rig: Rig) -> list[dict]:
    return [m for m in rig.bot_messages(REVIEW_CHANNEL) if "Quarterly review" in m.get("text", "")]


async def test_the_past_quarter_is_posted_once_with_its_chart(rig: Rig) -> None:
    rig.emulator.add_channel(REVIEW_CHANNEL, "reliability", members=[ALICE, BOB])  # the bot joins it
    await a_quarter_of_incidents(rig)

    assert await sweep_at(rig, datetime(2026, 4, 1, 8, 59, tzinfo=UTC)) == []
    assert posted_reviews(rig) == [], "not before 09:00 UTC on the quarter's first day"
    first, second = await asyncio.gather(
        sweep_at(rig, datetime(2026, 4, 1, 9, 0, tzinfo=UTC)), sweep_at(rig, datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
    )
    later = await sweep_at(rig, datetime(2026, 4, 2, 9, 0, tzinfo=UTC))
    key = f"quarterly_review/team:{rig.emulator.team_id}/2026-Q1"
    assert sorted(first + second + later) == [f"sent {key}"], "two sweepers at once, and a later one: sent once"
    (post,) = posted_reviews(rig)
    assert post["metadata"]["event_payload"]["key"] == key

    text = post["text"]
    assert "Quarterly review 2026-Q1\n" in text, "the quarter is over: not 'so far'"
    assert "*Incidents:* 6 (previous quarter 2)" in text
    assert "SEV1 2 (previous quarter 1)" in text and "SEV3 2 (previous quarter 0)" in text
    assert "Deployment 3 (previous quarter 0)" in text and "Configuration 0 (previous quarter 1)" in text
    assert "*Time to resolve* (median of 5): 2 h (previous quarter 4 h: faster)" in text
    assert "done on time 1 of 2 (50%); done late 1; won't do 1; 1 open past their due date" in text
    blocks = json.dumps(post["blocks"])
    assert "Recurring: give these a deeper review" in blocks and "cause: Deployment*: 3 incidents" in blocks
    assert "Login timeouts" not in blocks.split("Recurring")[1].split("graveyard")[0]
    graveyard = blocks.split("graveyard")[1]
    assert "Automatic rollback on 5xx" in graveyard and f"<@{BOB}>" in graveyard
    assert "Validate config in CI" in graveyard, "the graveyard holds every quarter's items"
    assert "Size the index workers" not in graveyard, "not yet due"
    assert "3 post-mortems not yet published" in blocks  # slow, search, login

    (image,) = [b for b in post["blocks"] if b["type"] == "image"]
    (chart,) = [f for f in rig.emulator.uploaded_files() if f["id"] == image["slack_file"]["id"]]
    assert chart["content"][:8] == b"\x89PNG\r\n\x1a\n"
    picture = Image.open(io.BytesIO(chart["content"]))
    picture.load()  # decodes every pixel: a truncated or corrupt file raises
    assert picture.format == "PNG" and picture.size == (1200, 675)
    assert len(picture.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 10, "something is drawn"


async def test_review_and_stats_give_the_same_numbers(rig: Rig) -> None:
    await a_quarter_of_incidents(rig)  # the Q1 incidents are exactly the last 90 days' (from 10 March)
    await rig.driver.slash_command(QUIET_CHANNEL, BOB, "stats 90")
    await rig.driver.slash_command(QUIET_CHANNEL, BOB, "review 2026-q1")
    answers = await rig.responses(2)
    stats = next(a["text"] for a in answers if "stats" in a["text"])
    review = next(a["text"] for a in answers if "Quarterly review" in a["text"])
    assert "Quarterly review 2026-Q1, so far" in review

    def number(pattern: str, text: str) -> str:
        found = re.search(pattern, text)
        assert found, f"{pattern!r} not in {text}"
        return found.group(1)

    assert number(r"\*Incidents:\* (\d+)", stats) == number(r"\*Incidents:\* (\d+)", review) == "6"
    for label in (r"\*Time to resolve\* \(median of \d+\): ", r"\*Time from resolution to post-mortem\* \(median\): "):
        assert number(label + r"([^(\n]+?)(?: \(|\n|$)", stats) == number(label + r"([^(\n]+?)(?: \(|\n|$)", review)
    assert number(r"done on time (\d+ of \d+ \(\d+%\))", stats) == number(r"done on time (\d+ of \d+ \(\d+%\))", review)
    assert number(r"(\d+) open past their due date", stats) == number(r"(\d+) open past their due date", review)
    assert number(r"(\*Post-mortems:\* .*)", stats) == number(r"(\*Post-mortems:\* .*)", review)

    wrong = await rig.driver.slash_command(QUIET_CHANNEL, BOB, "review last year")
    assert "YEAR-Qn" in wrong.json()["text"]
