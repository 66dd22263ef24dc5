"""`postmortem-bot demo` plays a plausible incident on a clock the bot and Slack share, and
prints Slack's markup as a person reads it."""

from __future__ import annotations

import io
import re

from bot.demo import run_demo
from slack_emulator.transcript import readable


async def test_the_demo_plays_on_a_moving_clock_shared_by_the_bot_and_slack(tmp_path) -> None:
    out = io.StringIO()
    database = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    assert await run_demo(database, out=out) == 0
    text = out.getvalue()

    # What people say happens when they say it, and the incident lasts as long as it did.
    assert "14:05 bob> Checkout error rate is at 40% since 14:02" in text
    assert "Duration 25 min" in text and "Duration 0 s" not in text
    rows = re.findall(r"^\| 2026-03-10 (\d\d:\d\d):\d\d UTC \| (\w+) \| (.*?) \| (\w+) \|$", text, re.M)
    assert [(time, who, kind) for time, who, _, kind in rows] == [
        ("14:04", "alice", "lifecycle"),
        ("14:05", "bob", "message"),
        ("14:06", "carol", "message"),
        ("14:09", "alice", "message"),
        ("14:21", "bob", "note"),
        ("14:30", "alice", "lifecycle"),
    ]
    # The follow-through: the meeting nudge again the next day, each owner's first DM on a
    # working morning in their own time zone.
    assert re.search(r"--- Wednesday 13:00 UTC, 09:00 for alice \(EDT\).*\n  sent meeting_unscheduled/", text)
    assert re.search(r"--- Wednesday 08:00 UTC, 09:00 for bob \(CET\).*\n  sent action_item/", text)
    assert re.search(r"--- Wednesday 00:00 UTC, 09:00 for carol \(JST\).*\n  sent action_item/", text)
    assert "bob presses [In progress]" in text

    # Markup as a person sees it: no raw emphasis, mentions, channel ids or emoji codes from the bot.
    slack_part = text.split("--- postmortem-")[0] + text.split("## Action items")[-1]
    for raw in ("*Severity*", "<@U", "<#C", "<!date", ":rotating_light:", ":clipboard:"):
        assert raw not in slack_part, raw
    assert "in #inc-checkout" in text and "@alice" in text

    last = text.rstrip("\n").splitlines()[-1]
    assert last.startswith("Shown: one incident in #inc-checkout") and last.endswith(f"Database: {database}")
    assert "4 nudges" in last


def test_mrkdwn_reads_as_slack_shows_it() -> None:
    names = {"U1": "alice"}.get
    channels = {"C1": "inc-checkout"}.get
    text = (
        "*Severity*: SEV1 _(edited)_ ~old~ <@U1> in <#C1> and <#C2|ops>, <!here>, <!subteam^S1|@oncall>,"
        " see <https://example.com/doc|the doc> or <https://example.com/x>; 2*3*4 stays &amp; :pushpin: :unknown:"
    )
    assert readable(text, lambda u: names(u) or u, lambda c: channels(c) or c) == (
        "Severity: SEV1 (edited) old @alice in #inc-checkout and #ops, @here, @oncall,"
        " see the doc (https://example.com/doc) or https://example.com/x; 2*3*4 stays & 📌 :unknown:"
    )
    assert readable("*bold*", lambda u: u, bold=True) == "\033[1mbold\033[0m"
