"""Block Kit builders, checked against Slack's limits by rendering them."""

from datetime import UTC, datetime, timedelta

from bot.ui.card import incident_card
from bot.ui.help import help_message
from bot.ui.text import MAX_MESSAGE_BLOCKS, MAX_SECTION_TEXT, escape, slack_date
from bot.ui.timeline import timeline_message
from bot.views import IncidentView, TimelineItem

START = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def incident(title="Checkout failing"):
    return IncidentView(
        id=1,
        team_id="T1",
        channel_id="C1",
        title=title,
        severity=1,
        status="active",
        commander_id="U1",
        started_at=START,
    )


def section_texts(message):
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]


def test_escape_only_the_three_characters():
    assert escape("<!channel> & <@U1> *bold*") == "&lt;!channel&gt; &amp; &lt;@U1&gt; *bold*"


def test_slack_date_has_utc_fallback():
    assert slack_date(START) == "<!date^1795442400^{date_short_pretty} {time}|2026-11-23 14:00 UTC>"


def test_card_with_huge_hostile_title_stays_within_limits():
    card = incident_card(incident("<!channel> " + "x" * 500))
    header = card["blocks"][0]["text"]["text"]
    assert len(header) <= 150
    assert "<!channel>" not in card["text"]


def test_timeline_of_thousands_of_long_entries_fits_one_message():
    items = [
        TimelineItem(
            occurred_at=START + timedelta(minutes=i),
            kind="message",
            user_id="U2",
            text="y" * 2000,
            ts=f"{1795442400 + i}.000001",
        )
        for i in range(2000)
    ]
    message = timeline_message(incident(), items)
    assert len(message["blocks"]) <= MAX_MESSAGE_BLOCKS
    assert all(len(t) <= MAX_SECTION_TEXT for t in section_texts(message))
    assert sum(len(t) for t in section_texts(message)) <= 11_000, "Slack refuses ~12k+ characters of blocks"
    assert "later entries not shown" in message["blocks"][-1]["elements"][0]["text"]
    shown = sum(t.count(":speech_balloon:") for t in section_texts(message))
    assert f"{2000 - shown} later entries" in message["blocks"][-1]["elements"][0]["text"]


def test_short_timeline_shows_everything():
    items = [TimelineItem(occurred_at=START, kind="note", user_id="U1", text="a & b")]
    message = timeline_message(incident(), items)
    assert "a &amp; b" in section_texts(message)[0]
    assert "not shown" not in str(message)


def test_help_is_ephemeral():
    message = help_message("I don't know `x`.")
    assert message["response_type"] == "ephemeral" and len(message["blocks"]) == 3
