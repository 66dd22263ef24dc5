from datetime import UTC, datetime

import pytest

from bot.payloads import MalformedPayload, SlackMessage, ts_to_datetime


def test_ts_keeps_microseconds_in_utc():
    assert ts_to_datetime("1700000000.000123") == datetime(2023, 11, 14, 22, 13, 20, 123, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["", "soon", "1700000000", "1.2.3", None, 17.5, "-1.000000"])
def test_bad_ts_is_malformed(bad):
    with pytest.raises(MalformedPayload):
        ts_to_datetime(bad)


def test_human_and_noise():
    human = SlackMessage.parse("C1", {"user": "U1", "text": "hi", "ts": "1700000000.000100"})
    assert human.is_human and human.thread_ts is None
    parent = SlackMessage.parse("C1", {"user": "U1", "text": "p", "ts": "1.000001", "thread_ts": "1.000001"})
    assert parent.thread_ts is None, "a thread parent is not a reply"
    for noise in (
        {"user": "U1", "text": "x", "ts": "1.000001", "subtype": "channel_join"},
        {"user": "U1", "text": "x", "ts": "1.000001", "bot_id": "B1"},
        {"text": "x", "ts": "1.000001", "subtype": "bot_message", "bot_id": "B1"},
        {"user": "U1", "text": "x", "ts": "1.000001", "subtype": "pinned_item"},
    ):
        assert not SlackMessage.parse("C1", noise).is_human
    for human_subtype in ("thread_broadcast", "file_share", "me_message"):
        assert SlackMessage.parse(
            "C1", {"user": "U1", "text": "x", "ts": "1.000001", "subtype": human_subtype}
        ).is_human


def test_files_and_edits():
    message = SlackMessage.parse(
        "C1",
        {
            "user": "U1",
            "text": "see",
            "ts": "2.000001",
            "files": [{"name": "a.png"}, {"title": "b"}, "junk"],
            "edited": {"user": "U1", "ts": "3.000001"},
        },
    )
    assert message.file_names == ("a.png", "b") and message.edited_ts == "3.000001"


@pytest.mark.parametrize("bad", [None, [], "text", {"user": "U1"}, {"ts": "1.1", "thread_ts": "nope"}])
def test_malformed_messages(bad):
    with pytest.raises(MalformedPayload):
        SlackMessage.parse("C1", bad)
