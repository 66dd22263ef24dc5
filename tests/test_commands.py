from datetime import date, time
from datetime import time as dtime

import pytest

from bot.command_parser import (
    AddActionItem,
    Help,
    Meeting,
    Note,
    Publish,
    Resolve,
    ShowTimeline,
    Start,
    UsageError,
    parse,
    plain_text,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("start Checkout failing --sev 1", Start("Checkout failing", 1)),
        ("start --sev=2 Checkout failing", Start("Checkout failing", 2)),
        ("start Checkout failing --sev SEV4", Start("Checkout failing", 4)),
        ('start "Checkout failing"', Start("Checkout failing", 3)),
        ("START  Payments down ", Start("Payments down", 3)),
        ("note 14:05 rolled back", Note("rolled back", time(14, 5))),
        ("note 9:30 paged", Note("paged", time(9, 30))),
        ("note scaled up the pool", Note("scaled up the pool", None)),
        ("note 14:05rolled", Note("14:05rolled", None)),
        ("timeline", ShowTimeline()),
        ("help", Help()),
        ("", Help()),
    ],
)
def test_parse(text, expected):
    assert parse(text) == expected


def test_unknown_subcommand_is_help_naming_it():
    result = parse("resolv now")
    assert isinstance(result, Help) and "resolv" in result.problem


@pytest.mark.parametrize(
    "text, hint",
    [
        ("start", "title"),
        ("start --sev 1", "title"),
        ("start Outage --sev 0", "1 to 4"),
        ("start Outage --sev high", "1 to 4"),
        ("start Outage --sev", "--sev 1"),
        ("note", "Say what happened"),
        ("note 14:05", "Say what happened"),
        ("note 24:00 late", "HH:MM"),
        ("note 12:60 late", "HH:MM"),
    ],
)
def test_usage_errors_say_what_to_type(text, hint):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert hint in str(info.value)


def test_resolve_publish_and_action():
    assert parse("resolve") == Resolve() and parse("publish") == Publish()
    assert parse("action <@UBOB01|bob> 2026-12-01 Add a p99 alert on checkout") == AddActionItem(
        owner="UBOB01", due=date(2026, 12, 1), title="Add a p99 alert on checkout"
    )


@pytest.mark.parametrize(
    "text, hint",
    [
        ("action <!subteam^S123|@oncall> 2026-12-01 Fix it", "not a group"),
        ("action <!here> 2026-12-01 Fix it", "not a group"),
        ("action bob 2026-12-01 Fix it", "owner"),
        ("action <@UBOB01|bob> 2026-13-01 Fix it", "not a date"),
        ("action <@UBOB01|bob> tomorrow Fix it", "owner, a due date"),
    ],
)
def test_action_usage_errors(text, hint):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert hint in str(info.value)


def test_escaped_command_text_is_stored_as_typed():
    assert plain_text("ping <@U1|alice> in <#C1|inc> see <https://x.io/a|x.io/a> &lt;b&gt; &amp; <!here>") == (
        "ping @alice in #inc see x.io/a <b> & @here"
    )
    assert parse("start Checkout &amp; payments &lt;EU&gt; --sev 2") == Start("Checkout & payments <EU>", 2)


def test_meeting():
    assert parse("meeting 2026-11-25 14:30 <@U1|alice> <@U2|bob> <@U1|alice>") == Meeting(
        day=date(2026, 11, 25), at=dtime(14, 30), attendees=("U1", "U2")
    )
    with pytest.raises(UsageError, match="date and time"):
        parse("meeting tomorrow")
    with pytest.raises(UsageError, match="not groups"):
        parse("meeting 2026-11-25 14:30 <!subteam^S1|@sre>")
