from datetime import time

import pytest

from bot.commands import Help, Note, ShowTimeline, Start, UsageError, parse


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
