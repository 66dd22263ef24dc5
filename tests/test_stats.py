"""`/postmortem stats`: the arithmetic on stored rows, and the command end to end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bot import command_parser
from bot.stats import team_stats
from bot.ui.stats import stats_message
from storage.models import ActionItem, Incident, Postmortem
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, QUIET_CHANNEL, Rig

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def incident(id: int, severity: int, resolved_after: timedelta | None) -> Incident:
    return Incident(
        id=id,
        team_id="T1",
        channel_id=f"C{id}",
        title="x",
        severity=severity,
        status="resolved",
        commander_id=ALICE,
        started_at=T0,
        resolved_at=T0 + resolved_after if resolved_after else None,
    )


def postmortem(
    incident_id: int, cause: str | None, submitted_after: timedelta | None, published: bool = False
) -> Postmortem:
    resolved = T0 + timedelta(hours=1)
    return Postmortem(
        incident_id=incident_id,
        draft={"cause_category": cause},
        updated_at=T0,
        submitted_at=resolved + submitted_after if submitted_after else None,
        published_at=T0 if published else None,
    )


def item(status: str, due: date, changed: date) -> ActionItem:
    return ActionItem(status=status, due=due, updated_at=datetime.combine(changed, datetime.min.time(), UTC))


def test_stats_count_by_severity_and_cause_and_take_medians() -> None:
    incidents = [incident(1, 1, timedelta(hours=1)), incident(2, 2, timedelta(hours=3)), incident(3, 1, None)]
    postmortems = [postmortem(1, "deployment", timedelta(hours=20), published=True), postmortem(2, None, None)]
    items = [
        item("done", date(2026, 11, 10), date(2026, 11, 9)),  # on time
        item("done", date(2026, 11, 10), date(2026, 11, 12)),  # late
        item("open", date(2026, 11, 15), date(2026, 11, 2)),  # overdue on the 20th
        item("in_progress", date(2026, 11, 25), date(2026, 11, 2)),
        item("wont_do", date(2026, 11, 1), date(2026, 11, 2)),
    ]
    stats = team_stats(incidents, postmortems, items, 90, date(2026, 11, 20))
    assert stats.by_severity == {1: 2, 2: 1}
    assert stats.by_cause == {"unknown": 2, "deployment": 1}
    assert stats.resolved == 2 and stats.median_time_to_resolve == timedelta(hours=2)
    assert stats.median_time_to_postmortem == timedelta(hours=20)
    assert (stats.postmortems_submitted, stats.postmortems_published) == (1, 1)
    assert (stats.items, stats.items_done, stats.items_done_on_time) == (5, 2, 1)
    assert (stats.items_open_overdue, stats.items_wont_do) == (1, 1)
    text = stats_message(stats)["text"]
    assert "SEV1 2, SEV2 1" in text and "Deployment 1" in text and "Not yet known 2" in text
    assert "2 h" in text and "1 of 2 (50%)" in text


def test_stats_with_nothing_to_count() -> None:
    stats = team_stats([], [], [], 30, date(2026, 11, 20))
    assert "No incidents were declared in the last 30 days" in stats_message(stats)["text"]


@pytest.mark.parametrize("text, days", [("stats", 90), ("stats 30", 30), ("STATS 7", 7)])
def test_stats_command_takes_a_period_in_days(text: str, days: int) -> None:
    assert command_parser.parse(text) == command_parser.Stats(days=days)


@pytest.mark.parametrize("text", ["stats lots", "stats 0", "stats -3", "stats 99999"])
def test_a_wrong_period_gets_a_hint(text: str) -> None:
    with pytest.raises(command_parser.UsageError, match="in days"):
        command_parser.parse(text)


async def test_stats_answer_privately_with_this_workspaces_numbers(rig: Rig) -> None:
    await rig.start_incident("Checkout failing --sev 1")
    due = (rig.today() + timedelta(days=10)).isoformat()
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, f"action <@{BOB}|bob> {due} Add a p99 alert at 800 ms")
    await rig.responses(1)

    await rig.driver.slash_command(QUIET_CHANNEL, BOB, "stats")
    answer = (await rig.responses(2))[-1]

    assert answer["response_type"] == "ephemeral"
    assert "*Incidents:* 1 (SEV1 1)" in answer["text"] and "*Action items:* 1 in all" in answer["text"]
    wrong = await rig.driver.slash_command(QUIET_CHANNEL, BOB, "stats forever")
    assert "in days" in wrong.json()["text"]


def test_quarters_parse_and_bound() -> None:
    from bot.stats import Quarter

    q1 = Quarter.parse("2026-q1")
    assert q1 == Quarter(2026, 1) and Quarter.parse("2026Q4") == Quarter(2026, 4)
    assert Quarter.parse("2026-Q5") is None and Quarter.parse("last year") is None
    assert (q1.start, q1.end) == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert q1.previous().label == "2025-Q4" and Quarter(2025, 4).next() == q1
    assert Quarter.of(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == q1


@pytest.mark.parametrize(
    "text, quarter", [("review", None), ("review 2026-Q2", "2026-Q2"), ("REVIEW 2025q3", "2025-Q3")]
)
def test_review_command_takes_a_quarter(text: str, quarter: str | None) -> None:
    assert command_parser.parse(text) == command_parser.Review(quarter=quarter)


def test_the_review_channel_must_be_an_id() -> None:
    from bot.config import ConfigError, Settings

    assert Settings.from_env({"POSTMORTEM_REVIEW_CHANNEL": "C0123ABCD"}).review_channel == "C0123ABCD"
    with pytest.raises(ConfigError, match="not a channel id"):
        Settings.from_env({"POSTMORTEM_REVIEW_CHANNEL": "#reliability"})
