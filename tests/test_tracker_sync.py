"""The both-ways rule (bot/trackers/sync.py): one side's change goes to the other; when both
changed the same field differently, the later change wins and is reported as a conflict."""

from __future__ import annotations

from datetime import date, timedelta

from bot.trackers.base import DONE, OPEN, WONT_DO
from bot.trackers.sync import Agreed, decide
from tests.conftest import TEST_START

AGREED = Agreed(status=OPEN, due=date(2026, 3, 20), owner="UBOB", assignee="acct-bob")
EARLY, LATE = TEST_START, TEST_START + timedelta(minutes=5)


def run(**changes):
    values = dict(
        status="open",
        due=AGREED.due,
        owner="UBOB",
        local_at=EARLY,
        remote_status=OPEN,
        remote_due=AGREED.due,
        remote_assignee="acct-bob",
        remote_at=EARLY,
    )
    values.update(changes)
    return decide(AGREED, **values)


def test_nothing_changed_means_nothing_to_do() -> None:
    decision = run(status="in_progress")  # in progress is still open to a tracker
    assert (decision.to_local, decision.to_remote, decision.conflicts) == ({}, {}, [])


def test_one_sided_changes_cross_over() -> None:
    assert run(remote_status=DONE).to_local == {"status": DONE}
    assert run(status="wont_do").to_remote == {"status": WONT_DO}
    assert run(due=date(2026, 3, 25)).to_remote == {"due": date(2026, 3, 25)}
    assert run(remote_assignee="acct-carol").to_local == {"owner": "acct-carol"}
    assert run(owner="UCAROL").to_remote == {"owner": "UCAROL"}


def test_both_changed_the_later_wins_and_says_so() -> None:
    later_remote = run(due=date(2026, 3, 25), local_at=EARLY, remote_due=date(2026, 3, 27), remote_at=LATE)
    assert later_remote.to_local == {"due": date(2026, 3, 27)} and later_remote.to_remote == {}
    assert later_remote.conflicts == [("due", "tracker")]
    later_local = run(status="done", local_at=LATE, remote_status=WONT_DO, remote_at=EARLY)
    assert later_local.to_remote == {"status": DONE} and later_local.conflicts == [("status", "slack")]


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    decision = run(status="done", remote_status=DONE, local_at=EARLY, remote_at=LATE)
    assert (decision.to_local, decision.to_remote, decision.conflicts) == ({}, {}, [])


def test_agreed_round_trips_through_json() -> None:
    assert Agreed.from_json(AGREED.to_json()) == AGREED and Agreed.from_json(None) is None
