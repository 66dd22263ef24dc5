"""Tests of the Slack Web API emulator, spoken to by the real slack_sdk AsyncWebClient.

No mocks: every test goes over HTTP to a running emulator, so what passes here is what
the bot's end-to-end tests can rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.models.metadata import Metadata
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import FixedClock
from slack_emulator import SlackEmulator, SlackError, api, faults
from slack_emulator.api import implemented_methods, possible_errors

SPEC_PATH = Path("/work/shared/slack-reference/web-api/slack_web_openapi_v2_without_examples.json")

ALICE, BOB, CAROL, GONE = "U0ALICE001", "U0BOB00001", "U0CAROL001", "U0GONE0001"
INCIDENT = "C0INCIDENT"  # public, bot is a member
LOBBY = "C0LOBBY001"  # public, bot is not a member
SECRET = "G0SECRET01"  # private, bot is not a member
WAR_ROOM = "C0WARROOM1"  # private (C id), bot is a member
OLD = "C0OLD00001"  # archived, bot is a member


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator() as emulator:
        bot = emulator.bot_user_id
        emulator.add_user(ALICE, "alice", tz="Asia/Kolkata", real_name="Alice A.")
        emulator.add_user(BOB, "bob", tz="America/New_York")
        emulator.add_user(CAROL, "carol")
        emulator.add_user(GONE, "gone", deleted=True)
        emulator.add_channel(INCIDENT, "inc-42", members=[ALICE, BOB, bot])
        emulator.add_channel(LOBBY, "lobby", members=[ALICE])
        emulator.add_channel(SECRET, "secret", is_private=True, members=[ALICE])
        emulator.add_channel(WAR_ROOM, "war-room", is_private=True, members=[ALICE, bot])
        emulator.add_channel(OLD, "old", members=[ALICE, bot], is_archived=True)
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def slack_error(call: Any) -> str:
    """Await a client call that must fail; return Slack's error name."""
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value.response["error"]


def modal(title: str = "Post-mortem", blocks: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"b{i}"}} for i in range(blocks)],
        **extra,
    }


# ----------------------------------------------------------------------- server & auth


async def test_api_url_ends_with_slash_and_server_stops() -> None:
    emulator = SlackEmulator()
    await emulator.start()
    assert emulator.api_url.endswith("/api/")
    assert emulator.api_url.startswith(emulator.base_url)
    await emulator.stop()
    with pytest.raises(RuntimeError):
        _ = emulator.api_url


async def test_auth_test(slack: SlackEmulator, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["user_id"] == slack.bot_user_id
    assert response["bot_id"] == slack.bot_id
    assert response["team_id"] == slack.team_id
    assert response["url"] == "https://emulated.slack.com/"
    assert response["is_enterprise_install"] is False


async def test_missing_and_wrong_tokens(slack: SlackEmulator) -> None:
    assert await slack_error(AsyncWebClient(base_url=slack.api_url).auth_test()) == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert await slack_error(wrong.auth_test()) == "invalid_auth"
    assert slack.calls[-1] == {"method": "auth.test", "args": {}, "status": 200, "ok": False, "error": "invalid_auth"}


async def test_unknown_method(client: AsyncWebClient) -> None:
    assert await slack_error(client.api_call("chat.teleport")) == "unknown_method"


async def test_form_body_with_token_field(slack: SlackEmulator) -> None:
    """Clients other than slack_sdk may send the token as a form field."""
    form = {"token": slack.bot_token, "channel": INCIDENT, "text": "form", "blocks": "[]"}
    async with aiohttp.ClientSession() as http, http.post(slack.api_url + "chat.postMessage", data=form) as response:
        body = await response.json()
    assert body["ok"] is True
    assert slack.message(INCIDENT, body["ts"])["text"] == "form"
    assert "token" not in slack.calls_to("chat.postMessage")[-1]["args"]


async def test_app_token_only_for_socket_mode(slack: SlackEmulator, client: AsyncWebClient) -> None:
    assert await slack_error(client.apps_connections_open(app_token=slack.bot_token)) == "not_allowed_token_type"
    app = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    response = await app.apps_connections_open(app_token=slack.app_token)
    assert response["url"].startswith("ws://")
    assert await slack_error(app.auth_test()) == "not_allowed_token_type"


# ----------------------------------------------------------------------- chat.*


async def test_post_message_stores_bot_message(slack: SlackEmulator, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]
    response = await client.chat_postMessage(channel=INCIDENT, text="hello", blocks=blocks)
    assert response["channel"] == INCIDENT
    stored = slack.message(INCIDENT, response["ts"])
    assert stored == response["message"]
    assert stored["user"] == slack.bot_user_id and stored["bot_id"] == slack.bot_id
    assert stored["blocks"] == blocks
    call = slack.calls_to("chat.postMessage")[-1]
    assert call["args"]["blocks"] == blocks and call["ok"] is True


async def test_post_message_errors(client: AsyncWebClient) -> None:
    assert await slack_error(client.chat_postMessage(channel=LOBBY, text="x")) == "not_in_channel"
    assert await slack_error(client.chat_postMessage(channel=SECRET, text="x")) == "channel_not_found"
    assert await slack_error(client.chat_postMessage(channel="C0NOWHERE1", text="x")) == "channel_not_found"
    assert await slack_error(client.chat_postMessage(channel=OLD, text="x")) == "is_archived"
    with pytest.warns(UserWarning, match="text"):  # slack_sdk warns before sending
        assert await slack_error(client.chat_postMessage(channel=INCIDENT)) == "no_text"
    bad_blocks = [{"text": "no type"}]
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=INCIDENT, text="x", blocks=bad_blocks)
    assert caught.value.response["error"] == "invalid_blocks"
    assert "missing required field: type" in caught.value.response["response_metadata"]["messages"][0]


async def test_post_message_to_user_id_opens_dm(slack: SlackEmulator, client: AsyncWebClient) -> None:
    response = await client.chat_postMessage(channel=ALICE, text="psst")
    dm = response["channel"]
    assert dm.startswith("D")
    assert (await client.conversations_open(users=ALICE))["channel"]["id"] == dm
    assert [m["text"] for m in slack.messages(dm)] == ["psst"]


async def test_thread_reply_updates_parent(slack: SlackEmulator, client: AsyncWebClient) -> None:
    parent = slack.post_user_message(INCIDENT, ALICE, "db is down")
    reply = await client.chat_postMessage(channel=INCIDENT, text="on it", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"]
    stored = slack.message(INCIDENT, parent["ts"])
    assert stored["reply_count"] == 1
    assert stored["reply_users"] == [slack.bot_user_id]
    assert stored["latest_reply"] == reply["ts"]


async def test_post_ephemeral(slack: SlackEmulator, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel=INCIDENT, user=ALICE, text="only you")
    assert response["message_ts"]
    assert slack.ephemerals(INCIDENT) == [
        {"channel": INCIDENT, "user": ALICE, "text": "only you", "blocks": None, "thread_ts": None}
    ]
    assert slack.messages(INCIDENT) == []
    assert await slack_error(client.chat_postEphemeral(channel=INCIDENT, user=CAROL, text="x")) == "user_not_in_channel"
    assert await slack_error(client.chat_postEphemeral(channel=LOBBY, user=ALICE, text="x")) == "not_in_channel"


async def test_update_and_delete_only_own_messages(slack: SlackEmulator, client: AsyncWebClient) -> None:
    human = slack.post_user_message(INCIDENT, ALICE, "mine")
    assert await slack_error(client.chat_update(channel=INCIDENT, ts=human["ts"], text="x")) == "cant_update_message"
    assert await slack_error(client.chat_delete(channel=INCIDENT, ts=human["ts"])) == "cant_delete_message"
    assert await slack_error(client.chat_update(channel=INCIDENT, ts="1.000001", text="x")) == "message_not_found"

    blocks = [{"type": "divider"}]
    posted = await client.chat_postMessage(channel=INCIDENT, text="v1", blocks=blocks)
    updated = await client.chat_update(channel=INCIDENT, ts=posted["ts"], text="v2")
    assert updated["message"]["text"] == "v2"
    assert updated["message"]["blocks"] == blocks  # omitted blocks are kept
    assert "edited" in slack.message(INCIDENT, posted["ts"])
    await client.chat_delete(channel=INCIDENT, ts=posted["ts"])
    assert slack.message(INCIDENT, posted["ts"]) is None


async def test_permalink(slack: SlackEmulator, client: AsyncWebClient) -> None:
    message = slack.post_user_message(INCIDENT, ALICE, "x")
    response = await client.chat_getPermalink(channel=INCIDENT, message_ts=message["ts"])
    assert response["permalink"] == (
        f"https://emulated.slack.com/archives/{INCIDENT}/p{message['ts'].replace('.', '')}"
    )


# ----------------------------------------------------------------------- message metadata

NUDGE = {"event_type": "nudge_sent", "event_payload": {"key": "action_item:7", "n": 1}}


async def test_metadata_round_trip_needs_include_all_metadata(slack: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=INCIDENT, text="nudge", metadata=NUDGE)
    assert posted["message"]["metadata"] == NUDGE
    assert slack.message(INCIDENT, posted["ts"])["metadata"] == NUDGE
    # slack_sdk's Metadata model is sent as the same JSON object.
    modelled = await client.chat_postMessage(
        channel=INCIDENT,
        text="reply",
        thread_ts=posted["ts"],
        metadata=Metadata(event_type="reply_sent", event_payload={"of": posted["ts"]}),
    )
    assert slack.message(INCIDENT, modelled["ts"])["metadata"] == {
        "event_type": "reply_sent",
        "event_payload": {"of": posted["ts"]},
    }
    slack.post_user_message(INCIDENT, ALICE, "no metadata here")

    plain = (await client.conversations_history(channel=INCIDENT))["messages"]
    assert [m["text"] for m in plain] == ["no metadata here", "nudge"]
    assert all("metadata" not in m for m in plain)
    full = (await client.conversations_history(channel=INCIDENT, include_all_metadata=True))["messages"]
    assert [m.get("metadata") for m in full] == [None, NUDGE]

    thread = (await client.conversations_replies(channel=INCIDENT, ts=posted["ts"]))["messages"]
    assert [m["text"] for m in thread] == ["nudge", "reply"]
    assert all("metadata" not in m for m in thread)
    thread = (await client.conversations_replies(channel=INCIDENT, ts=posted["ts"], include_all_metadata=True))[
        "messages"
    ]
    assert [m["metadata"]["event_type"] for m in thread] == ["nudge_sent", "reply_sent"]
    # Hiding it from a listing does not lose it.
    assert slack.message(INCIDENT, posted["ts"])["metadata"] == NUDGE


async def test_metadata_as_a_form_json_string(slack: SlackEmulator) -> None:
    form = {"token": slack.bot_token, "channel": INCIDENT, "text": "form", "metadata": json.dumps(NUDGE)}
    async with aiohttp.ClientSession() as http, http.post(slack.api_url + "chat.postMessage", data=form) as response:
        body = await response.json()
    assert body["ok"] is True
    assert slack.message(INCIDENT, body["ts"])["metadata"] == NUDGE


@pytest.mark.parametrize(
    "metadata",
    [
        {"event_payload": {"key": "x"}},  # no event_type
        {"event_type": "", "event_payload": {}},
        {"event_type": 7, "event_payload": {}},
        {"event_type": "nudge_sent"},  # no event_payload
        {"event_type": "nudge_sent", "event_payload": ["not", "an", "object"]},
        ["not", "an", "object"],
        "{not json",
        json.dumps(["a JSON string", "but not an object"]),
    ],
)
async def test_invalid_metadata(slack: SlackEmulator, client: AsyncWebClient, metadata: Any) -> None:
    assert (
        await slack_error(client.chat_postMessage(channel=INCIDENT, text="x", metadata=metadata))
        == "invalid_metadata_format"
    )
    assert slack.messages(INCIDENT) == []
    posted = await client.chat_postMessage(channel=INCIDENT, text="v1", metadata=NUDGE)
    assert (
        await slack_error(client.chat_update(channel=INCIDENT, ts=posted["ts"], text="v2", metadata=metadata))
        == "invalid_metadata_format"
    )
    unchanged = slack.message(INCIDENT, posted["ts"])
    assert (unchanged["text"], unchanged["metadata"]) == ("v1", NUDGE)


async def test_update_keeps_metadata_unless_given(slack: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=INCIDENT, text="v1", metadata=NUDGE)
    updated = await client.chat_update(channel=INCIDENT, ts=posted["ts"], text="v2")
    assert updated["message"]["metadata"] == NUDGE
    assert slack.message(INCIDENT, posted["ts"])["metadata"] == NUDGE
    later = {"event_type": "nudge_sent", "event_payload": {"key": "action_item:7", "n": 2}}
    updated = await client.chat_update(channel=INCIDENT, ts=posted["ts"], text="v3", metadata=later)
    assert updated["message"]["metadata"] == later
    [listed] = (await client.conversations_history(channel=INCIDENT, include_all_metadata=True))["messages"]
    assert (listed["text"], listed["metadata"]) == ("v3", later)
    # A message posted without metadata gains it by an update.
    bare = await client.chat_postMessage(channel=INCIDENT, text="bare")
    await client.chat_update(channel=INCIDENT, ts=bare["ts"], text="dressed", metadata=NUDGE)
    assert slack.message(INCIDENT, bare["ts"])["metadata"] == NUDGE


# ----------------------------------------------------------------------- DMs


async def test_dm_to_deactivated_user(slack: SlackEmulator, client: AsyncWebClient) -> None:
    # Never DMed: the DM cannot be opened.
    assert await slack_error(client.chat_postMessage(channel=GONE, text="x")) == "channel_not_found"
    assert await slack_error(client.conversations_open(users=GONE)) == "user_disabled"
    assert not any(c["is_im"] and c["user"] == GONE for c in slack.channels.values())
    assert slack.messages_in_dm(GONE) == []

    # Deactivated after the bot DMed them: Slack keeps the DM and still posts into it.
    dm = (await client.chat_postMessage(channel=CAROL, text="before"))["channel"]
    user = slack.deactivate_user(CAROL)
    assert user["deleted"] is True
    assert (await client.users_info(user=CAROL))["user"]["deleted"] is True
    assert await slack_error(client.conversations_open(users=CAROL)) == "user_disabled"
    after = await client.chat_postMessage(channel=CAROL, text="after")
    assert after["channel"] == dm
    assert [m["text"] for m in slack.messages_in_dm(CAROL)] == ["before", "after"]
    slack.scopes += ("im:read",)  # conversations.info on a DM; the bot's manifest lacks it
    assert (await client.conversations_info(channel=dm))["channel"]["is_user_deleted"] is True

    with pytest.raises(ValueError, match="add_user"):
        slack.deactivate_user("U0NOBODY01")
    with pytest.raises(ValueError, match="bot"):
        slack.deactivate_user(slack.bot_user_id)


async def test_dm_to_a_bot(slack: SlackEmulator, client: AsyncWebClient) -> None:
    other_bot = "U0OTHERBOT"
    slack.add_user(other_bot, "other-bot", is_bot=True)
    for bot in (other_bot, slack.bot_user_id):
        assert await slack_error(client.chat_postMessage(channel=bot, text="x")) == "cannot_dm_bot"
        assert await slack_error(client.conversations_open(users=bot)) == "cannot_dm_bot"
    assert not any(c["is_im"] or c["is_mpim"] for c in slack.channels.values())
    # The bot's own id next to one human is just that human's DM.
    dm = (await client.conversations_open(users=f"{slack.bot_user_id},{ALICE}"))["channel"]
    assert dm["id"] == slack.open_dm(ALICE)


async def test_conversations_open_errors(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.scopes += ("mpim:write",)  # opening group DMs; the bot's manifest lacks it
    assert await slack_error(client.conversations_open(users="")) == "users_list_not_supplied"
    assert await slack_error(client.conversations_open(users="U0NOBODY01")) == "user_not_found"
    assert await slack_error(client.conversations_open(users=f"{ALICE},{GONE}")) == "user_disabled"
    nine = ",".join(f"U0MANY{i:04d}" for i in range(9))
    assert await slack_error(client.conversations_open(users=nine)) == "too_many_users"
    assert await slack_error(client.conversations_open(channel=INCIDENT)) == "channel_not_found"


async def test_messages_in_dm(slack: SlackEmulator, client: AsyncWebClient) -> None:
    assert slack.messages_in_dm(ALICE) == []
    assert not any(c["is_im"] for c in slack.channels.values())  # looking opens nothing
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*due today*"}}]
    first = await client.chat_postMessage(channel=ALICE, text="due today", blocks=blocks, metadata=NUDGE)
    dm = first["channel"]
    answer = slack.post_user_message(dm, ALICE, "on it", thread_ts=first["ts"])
    await client.chat_postMessage(channel=dm, text="thanks")
    messages = slack.messages_in_dm(ALICE)
    assert [m["text"] for m in messages] == ["due today", "on it", "thanks"]
    assert messages[0]["blocks"] == blocks and messages[0]["metadata"] == NUDGE
    assert messages[1]["thread_ts"] == first["ts"] and messages[1]["ts"] == answer["ts"]
    assert messages == slack.messages(dm)
    messages[0]["text"] = "changed"  # copies: the emulator's state is not touched
    assert slack.messages_in_dm(ALICE)[0]["text"] == "due today"
    assert slack.messages_in_dm(BOB) == []
    with pytest.raises(ValueError, match="add_user"):
        slack.messages_in_dm("U0NOBODY01")


# ----------------------------------------------------------------------- conversations.*


async def test_join(slack: SlackEmulator, client: AsyncWebClient) -> None:
    joined = await client.conversations_join(channel=LOBBY)
    assert joined["channel"]["is_member"] is True
    assert "warning" not in joined
    assert slack.bot_user_id in slack.channels[LOBBY]["members"]
    assert slack.messages(LOBBY) == []  # join announcements are opt-in
    again = await client.conversations_join(channel=LOBBY)
    assert again["warning"] == "already_in_channel"
    assert again["response_metadata"]["warnings"] == ["already_in_channel"]
    assert await slack_error(client.conversations_join(channel=WAR_ROOM)) == "method_not_supported_for_channel_type"
    assert await slack_error(client.conversations_join(channel=SECRET)) == "channel_not_found"
    slack.add_channel("C0ARCHIVE2", "archived-public", is_archived=True)
    assert await slack_error(client.conversations_join(channel="C0ARCHIVE2")) == "is_archived"


async def test_join_announcement_like_slack(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.announce_joins = True
    await client.conversations_join(channel=LOBBY)
    [join] = slack.messages(LOBBY)
    assert (join["subtype"], join["user"]) == ("channel_join", slack.bot_user_id)


def test_state_snapshots_and_setup_checks() -> None:
    slack = SlackEmulator()
    slack.add_user(ALICE, "alice")
    slack.add_channel(SECRET, "secret", is_private=True, members=[ALICE])
    assert slack.channels[SECRET]["is_private"] is True
    assert slack.channels[SECRET]["members"] == [ALICE]
    assert slack.users[ALICE]["name"] == "alice"
    assert slack.users[slack.bot_user_id]["is_bot"] is True
    with pytest.raises(ValueError, match="add_user"):
        slack.add_channel("C0STRANGER", "x", members=["U0NOBODY01"])
    with pytest.raises(ValueError, match="is_private"):
        slack.add_channel("G0PUBLIC01", "x")
    with pytest.raises(ValueError, match="private"):
        slack.post_user_message(SECRET, slack.bot_user_id, "bot is not in it")


async def test_info(client: AsyncWebClient) -> None:
    info = (await client.conversations_info(channel=WAR_ROOM))["channel"]
    assert info["id"] == WAR_ROOM and info["name"] == "war-room"
    assert info["is_private"] is True and info["is_member"] is True
    assert info["is_im"] is False and info["is_archived"] is False
    assert (await client.conversations_info(channel=LOBBY))["channel"]["is_member"] is False
    assert await slack_error(client.conversations_info(channel=SECRET)) == "channel_not_found"


async def test_history_bounds_are_exclusive_unless_inclusive(slack: SlackEmulator, client: AsyncWebClient) -> None:
    first, second, third = (slack.post_user_message(INCIDENT, ALICE, t)["ts"] for t in ("one", "two", "three"))

    async def texts(**kwargs: Any) -> list[str]:
        response = await client.conversations_history(channel=INCIDENT, **kwargs)
        return [m["text"] for m in response["messages"]]

    assert await texts() == ["three", "two", "one"]  # newest first
    assert await texts(latest=second) == ["one"]
    assert await texts(latest=second, inclusive=True) == ["two", "one"]
    assert await texts(oldest=first, latest=third) == ["two"]
    assert await texts(oldest=first, latest=third, inclusive=True) == ["three", "two", "one"]
    assert await slack_error(client.conversations_history(channel=INCIDENT, latest="soon")) == "invalid_ts_latest"


async def test_history_pagination(slack: SlackEmulator, client: AsyncWebClient) -> None:
    for i in range(5):
        slack.post_user_message(INCIDENT, ALICE, f"m{i}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await client.conversations_history(channel=INCIDENT, limit=2, cursor=cursor)
        pages += 1
        seen += [m["text"] for m in page["messages"]]
        if not page["has_more"]:
            break
        cursor = page["response_metadata"]["next_cursor"]
    assert seen == ["m4", "m3", "m2", "m1", "m0"]
    assert pages == 3


async def test_history_hides_replies_but_shows_broadcasts_and_reactions(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    parent = slack.post_user_message(INCIDENT, ALICE, "parent")
    slack.post_user_message(INCIDENT, BOB, "hidden reply", thread_ts=parent["ts"])
    slack.post_user_message(INCIDENT, BOB, "broadcast", thread_ts=parent["ts"], subtype="thread_broadcast")
    slack.add_reaction(INCIDENT, parent["ts"], BOB, "eyes")
    slack.add_reaction(INCIDENT, parent["ts"], ALICE, "eyes")
    messages = (await client.conversations_history(channel=INCIDENT))["messages"]
    assert [m["text"] for m in messages] == ["broadcast", "parent"]
    assert messages[1]["reply_count"] == 2
    assert messages[1]["reactions"] == [{"name": "eyes", "users": [BOB, ALICE], "count": 2}]
    slack.remove_reaction(INCIDENT, parent["ts"], BOB, "eyes")
    slack.remove_reaction(INCIDENT, parent["ts"], ALICE, "eyes")
    assert "reactions" not in slack.message(INCIDENT, parent["ts"])


async def test_history_membership_rules(client: AsyncWebClient) -> None:
    assert await slack_error(client.conversations_history(channel=LOBBY)) == "not_in_channel"
    assert await slack_error(client.conversations_history(channel=SECRET)) == "channel_not_found"


async def test_replies_for_a_reply_ts_returns_whole_thread(slack: SlackEmulator, client: AsyncWebClient) -> None:
    parent = slack.post_user_message(INCIDENT, ALICE, "parent")
    first = slack.post_user_message(INCIDENT, BOB, "r1", thread_ts=parent["ts"])
    slack.post_user_message(INCIDENT, ALICE, "r2", thread_ts=parent["ts"])
    lonely = slack.post_user_message(INCIDENT, BOB, "no thread")

    response = await client.conversations_replies(channel=INCIDENT, ts=first["ts"])
    assert [m["text"] for m in response["messages"]] == ["parent", "r1", "r2"]
    response = await client.conversations_replies(channel=INCIDENT, ts=lonely["ts"])
    assert [m["text"] for m in response["messages"]] == ["no thread"]
    assert await slack_error(client.conversations_replies(channel=INCIDENT, ts="1.000002")) == "thread_not_found"


async def test_edit_and_delete_as_humans(slack: SlackEmulator) -> None:
    parent = slack.post_user_message(INCIDENT, ALICE, "parent")
    reply = slack.post_user_message(INCIDENT, BOB, "typo", thread_ts=parent["ts"])
    new, old = slack.edit_user_message(INCIDENT, reply["ts"], "fixed")
    assert (new["text"], old["text"]) == ("fixed", "typo")
    assert new["edited"]["user"] == BOB
    assert slack.delete_message(INCIDENT, reply["ts"])["text"] == "fixed"
    assert "reply_count" not in slack.message(INCIDENT, parent["ts"])


async def test_open_and_members(slack: SlackEmulator, client: AsyncWebClient) -> None:
    dm = (await client.conversations_open(users=BOB))["channel"]["id"]
    assert dm.startswith("D") and dm == slack.open_dm(BOB)
    assert await slack_error(client.conversations_open(users=GONE)) == "user_disabled"
    assert await slack_error(client.conversations_open(users="U0NOBODY01")) == "user_not_found"
    members: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_members(channel=INCIDENT, limit=2, cursor=cursor)
        members += page["members"]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert members == [ALICE, BOB, slack.bot_user_id]


# ----------------------------------------------------------------------- pins, reactions


async def test_pins(slack: SlackEmulator, client: AsyncWebClient) -> None:
    message = slack.post_user_message(INCIDENT, ALICE, "timeline")
    await client.pins_add(channel=INCIDENT, timestamp=message["ts"])
    assert slack.pins(INCIDENT) == [message["ts"]]
    assert await slack_error(client.pins_add(channel=INCIDENT, timestamp=message["ts"])) == "already_pinned"
    assert await slack_error(client.pins_add(channel=INCIDENT, timestamp="1.000003")) == "message_not_found"
    lobby = slack.post_user_message(LOBBY, ALICE, "x")
    assert await slack_error(client.pins_add(channel=LOBBY, timestamp=lobby["ts"])) == "not_in_channel"

    slack.scopes += ("pins:read",)  # pins.list; the bot's manifest lacks it
    items = (await client.pins_list(channel=INCIDENT))["items"]
    assert [(i["type"], i["channel"], i["message"]["ts"]) for i in items] == [("message", INCIDENT, message["ts"])]

    await client.pins_remove(channel=INCIDENT, timestamp=message["ts"])
    assert slack.pins(INCIDENT) == []
    assert await slack_error(client.pins_remove(channel=INCIDENT, timestamp=message["ts"])) == "no_pin"


async def test_reactions_get(slack: SlackEmulator, client: AsyncWebClient) -> None:
    message = slack.post_user_message(INCIDENT, ALICE, "x")
    slack.add_reaction(INCIDENT, message["ts"], BOB, "white_check_mark")
    response = await client.reactions_get(channel=INCIDENT, timestamp=message["ts"], full=True)
    assert response["type"] == "message" and response["channel"] == INCIDENT
    assert response["message"]["reactions"] == [{"name": "white_check_mark", "users": [BOB], "count": 1}]


# ----------------------------------------------------------------------- users.info


async def test_users_info_time_zone(slack: SlackEmulator, client: AsyncWebClient) -> None:
    user = (await client.users_info(user=ALICE))["user"]
    assert user["tz"] == "Asia/Kolkata"
    assert user["tz_offset"] == 5 * 3600 + 30 * 60  # no DST in India
    assert user["real_name"] == "Alice A." and user["profile"]["display_name"] == "alice"
    assert user["is_bot"] is False and user["deleted"] is False
    bot = (await client.users_info(user=slack.bot_user_id))["user"]
    assert bot["is_bot"] is True
    assert await slack_error(client.users_info(user="U0NOBODY01")) == "user_not_found"


# ----------------------------------------------------------------------- views.*


async def test_views_open_trigger_rules(slack: SlackEmulator, client: AsyncWebClient) -> None:
    assert await slack_error(client.views_open(trigger_id="123.456.abc", view=modal())) == "invalid_trigger_id"
    trigger = slack.issue_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=modal(private_metadata="42"))
    view = opened["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["state"] == {"values": {}} and view["private_metadata"] == "42"
    assert await slack_error(client.views_open(trigger_id=trigger, view=modal())) == "trigger_exchanged"

    slack.trigger_lifetime = 0.05
    stale = slack.issue_trigger_id()
    await asyncio.sleep(0.1)
    assert await slack_error(client.views_open(trigger_id=stale, view=modal())) == "trigger_expired"

    [recorded] = slack.views()
    assert recorded["id"] == view["id"] and recorded["type"] == "modal"
    assert recorded["user"] is None
    assert recorded["view"]["title"]["text"] == "Post-mortem"


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal(title="x" * 25), "/view/title/text"),
        (modal(blocks=101), "/view/blocks"),
        (modal(private_metadata="x" * 3001), "/view/private_metadata"),
        (modal(submit={"type": "plain_text", "text": "x" * 25}), "/view/submit/text"),
        ({**modal(), "type": "home"}, "/view/type"),
    ],
)
async def test_views_open_limits(
    slack: SlackEmulator, client: AsyncWebClient, view: dict[str, Any], pointer: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.views_open(trigger_id=slack.issue_trigger_id(), view=view)
    assert caught.value.response["error"] == "invalid_arguments"
    messages = caught.value.response["response_metadata"]["messages"]
    assert any(m.startswith("[ERROR]") and f"[json-pointer:{pointer}]" in m for m in messages)
    assert slack.views() == []


async def test_views_update_and_publish(slack: SlackEmulator, client: AsyncWebClient) -> None:
    view = (await client.views_open(trigger_id=slack.issue_trigger_id(), view=modal()))["view"]
    updated = await client.views_update(view_id=view["id"], hash=view["hash"], view=modal(title="Step 2"))
    assert updated["view"]["hash"] != view["hash"]
    assert (
        await slack_error(client.views_update(view_id=view["id"], hash=view["hash"], view=modal())) == "hash_conflict"
    )
    assert await slack_error(client.views_update(view_id="V0NOPE", view=modal())) == "view_not_found"

    home = {"type": "home", "blocks": [{"type": "divider"}]}
    published = await client.views_publish(user_id=ALICE, view=home)
    republished = await client.views_publish(user_id=ALICE, view=home)
    assert published["view"]["id"] == republished["view"]["id"]
    by_id = {v["id"]: v for v in slack.views()}
    assert by_id[view["id"]]["title"]["text"] == "Step 2"
    assert by_id[published["view"]["id"]]["user"] == ALICE


# ----------------------------------------------------------------------- fault injection


async def test_rate_limit_retry_after_is_honoured(slack: SlackEmulator) -> None:
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    slack.fail("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    response = await client.chat_postMessage(channel=INCIDENT, text="eventually")
    assert time.monotonic() - started >= 1.0  # waited Retry-After before the retry
    assert response["ok"] is True
    assert [c["status"] for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert slack.calls_to("chat.postMessage")[0]["error"] == "ratelimited"


async def test_rate_limit_without_handler_surfaces(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.fail("users.info", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user=ALICE)
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "7"
    assert (await client.users_info(user=ALICE))["ok"] is True  # only `times` calls fail


async def test_server_error_is_retried(slack: SlackEmulator) -> None:
    client = AsyncWebClient(
        token=slack.bot_token, base_url=slack.api_url, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)]
    )
    slack.fail("conversations.history", status=500)
    response = await client.conversations_history(channel=INCIDENT)
    assert response["ok"] is True
    assert [c["status"] for c in slack.calls_to("conversations.history")] == [500, 200]


async def test_injected_error_answer(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", error="fatal_error", times=2)
    for _ in range(2):
        assert await slack_error(client.chat_postMessage(channel=INCIDENT, text="x")) == "fatal_error"
    assert (await client.chat_postMessage(channel=INCIDENT, text="x"))["ok"] is True
    with pytest.raises(ValueError, match="implements"):
        slack.fail("chat.postMesage", error="typo")


async def test_stop_wakes_delayed_calls() -> None:
    slack = SlackEmulator()
    await slack.start()
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    slack.delay("auth.test", 60)
    pending = asyncio.create_task(client.auth_test())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await slack.stop()
    assert time.monotonic() - started < 5
    await asyncio.gather(pending, return_exceptions=True)


async def test_delay(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.delay("auth.test", 0.3)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started < 0.3


# ----------------------------------------------------------------------- chaos mode


async def statuses_of(slack: SlackEmulator, calls: int, method: str = "auth.test") -> list[int]:
    """Make `calls` calls one after the other, with no retries; the HTTP status of each."""
    found = []
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    async with aiohttp.ClientSession() as http:
        for _ in range(calls):
            async with http.post(slack.api_url + method, headers=headers) as response:
                await response.read()
                found.append(response.status)
    return found


async def test_chaos_with_a_seed_is_reproducible(slack: SlackEmulator) -> None:
    runs = []
    for seed in (7, 7, 8):
        async with SlackEmulator() as fresh:
            fresh.chaos(seed=seed, rate_limited=0.2, server_error=0.2, slow=0.0)
            runs.append((await statuses_of(fresh, 60), [e["fault"] for e in fresh.chaos_log]))
    assert runs[0] == runs[1], "the same seed gives the same faults"
    assert runs[0][0] != runs[2][0], "another seed gives others"
    assert {429, 500, 200} <= set(runs[0][0])


async def test_chaos_streams_are_per_method(slack: SlackEmulator) -> None:
    """A method's faults do not depend on how many calls other methods made in between."""
    slack.chaos(seed=3, rate_limited=0.3, server_error=0.2, slow=0.0)
    alone = await statuses_of(slack, 40)
    async with SlackEmulator() as other:
        other.chaos(seed=3, rate_limited=0.3, server_error=0.2, slow=0.0)
        client = AsyncWebClient(token=other.bot_token, base_url=other.api_url, retry_handlers=[])
        mixed = []
        for _ in range(40):
            with contextlib.suppress(SlackApiError):
                await client.users_info(user=ALICE)
            mixed.extend(await statuses_of(other, 1))
    assert mixed == alone


async def test_chaos_rates_are_roughly_honoured(slack: SlackEmulator) -> None:
    slack.chaos(seed=2026, rate_limited=0.10, server_error=0.05, slow=0.05, slow_seconds=0.0)
    calls = 1000
    statuses = [
        s for batch in await asyncio.gather(*(statuses_of(slack, 50) for _ in range(calls // 50))) for s in batch
    ]
    counts = slack.chaos_counts()
    assert counts["calls"] == calls
    assert counts["rate_limited"] == statuses.count(429)
    assert counts["server_error"] == statuses.count(500)
    # Binomial: 3.5 standard deviations either side of the expected count.
    for fault, rate in (("rate_limited", 0.10), ("server_error", 0.05), ("slow", 0.05)):
        expected, spread = calls * rate, 3.5 * (calls * rate * (1 - rate)) ** 0.5
        assert abs(counts[fault] - expected) <= spread, (fault, counts)
    assert all(e["seed"] == 2026 for e in slack.chaos_log)


async def test_chaos_rate_limits_carry_retry_after_and_faults_come_before_any_effect(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.chaos(seed=1, rate_limited=1.0, server_error=0.0, slow=0.0, retry_after=2)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=INCIDENT, text="never posted")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "2"
    slack.chaos(seed=1, rate_limited=0.0, server_error=1.0, slow=0.0)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=INCIDENT, text="never posted")
    # Whichever of the upload's steps the 500 hits, the client raises: any exception counts.
    with pytest.raises(Exception):  # noqa: B017
        await client.files_upload_v2(channel=INCIDENT, content="x", filename="x.md")
    assert slack.messages(INCIDENT) == [] and slack.uploaded_files() == []
    assert [c["status"] for c in slack.calls_to("chat.postMessage")] == [429, 500]


async def test_chaos_is_ridden_out_by_retry_handlers_uploads_included(slack: SlackEmulator) -> None:
    quick = FixedValueRetryIntervalCalculator(0.01)
    client = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[
            AsyncServerErrorRetryHandler(max_retry_count=8, interval_calculator=quick),
        ],
    )
    slack.chaos(seed=11, rate_limited=0.0, server_error=0.5, slow=0.0)
    for n in range(3):
        await client.files_upload_v2(channel=INCIDENT, content=f"doc {n}", filename=f"{n}.md")
    assert sorted(f["content"] for f in slack.uploaded_files()) == [b"doc 0", b"doc 1", b"doc 2"]
    assert any(e["target"] == faults.UPLOAD_TARGET for e in slack.chaos_log)
    assert len([m for m in slack.messages(INCIDENT) if m.get("files")]) == 3, "each shared once"


async def test_chaos_spares_trigger_bound_calls_and_calm_ends_it(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.chaos(seed=5, rate_limited=0.5, server_error=0.5, slow=0.0)
    for _ in range(20):
        await client.views_open(trigger_id=slack.issue_trigger_id(), view=modal())
    assert all(c["ok"] for c in slack.calls_to("views.open"))
    assert slack.chaos_seed == 5
    before = slack.chaos_counts()
    slack.calm()
    assert slack.chaos_seed is None
    assert await statuses_of(slack, 50) == [200] * 50
    assert slack.chaos_counts() == before, "calm draws nothing"
    slack.fail("auth.test", status=500)  # scripted faults still work, and come first
    assert await statuses_of(slack, 2) == [500, 200]


def test_chaos_arguments_are_checked() -> None:
    slack = SlackEmulator()
    with pytest.raises(ValueError, match="probability"):
        slack.chaos(seed=1, rate_limited=1.5)
    with pytest.raises(ValueError, match="more than 1"):
        slack.chaos(seed=1, rate_limited=0.6, server_error=0.6)
    with pytest.raises(ValueError, match="implements"):
        slack.chaos(seed=1, exempt=["views.opn"])


# ----------------------------------------------------------------------- hooks and files


async def test_response_url_records_posts(slack: SlackEmulator) -> None:
    url = slack.new_response_url()
    assert url.startswith(slack.base_url + "/_hooks/response/")
    async with aiohttp.ClientSession() as http:
        for body in ({"text": "first", "replace_original": True}, {"delete_original": True}):
            async with http.post(url, json=body) as response:
                assert response.status == 200
        async with http.post(slack.base_url + "/_hooks/response/unknown", json={}) as response:
            assert response.status == 404
    assert slack.responses() == [{"text": "first", "replace_original": True}, {"delete_original": True}]


async def test_files_upload_v2(slack: SlackEmulator, client: AsyncWebClient) -> None:
    response = await client.files_upload_v2(
        channel=INCIDENT, content="# Post-mortem\n", filename="x.md", title="Report", initial_comment="Draft attached"
    )
    assert response["file"]["name"] == "x.md" and response["file"]["title"] == "Report"
    [uploaded] = slack.uploaded_files()
    assert uploaded == {
        "id": response["file"]["id"],
        "filename": "x.md",
        "title": "Report",
        "content": b"# Post-mortem\n",
        "channel": INCIDENT,
    }
    [shared] = slack.messages(INCIDENT)
    assert shared["text"] == "Draft attached" and "subtype" not in shared
    assert shared["files"][0]["id"] == uploaded["id"]
    with pytest.raises(SlackApiError):
        await client.files_upload_v2(channel=LOBBY, content="x", filename="y.md")
    assert slack.calls_to("files.completeUploadExternal")[-1]["error"] == "not_in_channel"


def test_new_ts_strictly_increasing() -> None:
    emulator = SlackEmulator(clock=FixedClock(datetime(2026, 3, 10, 13, 0, 0, 250_000, tzinfo=UTC)))
    stamps = [emulator.new_ts() for _ in range(1000)]
    keys = [tuple(map(int, ts.split("."))) for ts in stamps]
    assert keys == sorted(set(keys))
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)
    assert stamps[0] == "1773147600.250000", "a ts is the emulator's clock, to the microsecond"


# ----------------------------------------------------------------------- Socket Mode


async def open_socket(
    slack: SlackEmulator, http: aiohttp.ClientSession, **options: Any
) -> aiohttp.ClientWebSocketResponse:
    """A raw websocket on a fresh apps.connections.open URL, its hello already read."""
    app = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    url = (await app.apps_connections_open(app_token=slack.app_token))["url"]
    ws = await http.ws_connect(url, **options)
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello"
    return ws


async def test_socket_mode_with_slack_sdk_client(slack: SlackEmulator) -> None:
    """slack_sdk's aiohttp SocketModeClient (what bolt's AsyncSocketModeHandler runs)
    connects, gets hello, and acks envelopes with and without a response payload."""
    received: list[dict[str, Any]] = []

    async def on_message(client: Any, message: dict[str, Any], raw: str | None) -> None:
        received.append(message)

    async def on_request(client: Any, request: SocketModeRequest) -> None:
        payload = {"text": f"echo {request.payload['text']}"} if request.accepts_response_payload else None
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload=payload))

    web_client = AsyncWebClient(base_url=slack.api_url)
    client = SocketModeClient(app_token=slack.app_token, web_client=web_client)
    client.message_listeners.append(on_message)
    client.socket_mode_request_listeners.append(on_request)
    try:
        assert slack.socket_connections == 0
        await client.connect()
        await slack.wait_for_socket_connection(timeout=5)
        assert slack.socket_connections == 1
        assert slack.calls_to("apps.connections.open")[-1]["ok"] is True

        ack = await slack.send_socket_envelope(
            "slash_commands", {"text": "hi"}, accepts_response_payload=True, timeout=5
        )
        assert ack is not None and set(ack) == {"envelope_id", "payload"}
        assert ack["payload"] == {"text": "echo hi"}
        ack = await slack.send_socket_envelope("events_api", {"text": "event"}, timeout=5)
        assert ack is not None and list(ack) == ["envelope_id"]
        assert len(slack.socket_acks) == 2

        hello, *envelopes = received
        assert hello == {
            "type": "hello",
            "num_connections": 1,
            "debug_info": hello["debug_info"],
            "connection_info": {"app_id": slack.app_id},
        }
        assert [e["type"] for e in envelopes] == ["slash_commands", "events_api"]
        assert envelopes[1] == {
            "envelope_id": ack["envelope_id"],
            "type": "events_api",
            "payload": {"text": "event"},
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }
    finally:
        await client.close()
    deadline = time.monotonic() + 5
    while slack.socket_connections and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert slack.socket_connections == 0


async def test_socket_url_needs_a_fresh_ticket(slack: SlackEmulator) -> None:
    app = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    url = (await app.apps_connections_open(app_token=slack.app_token))["url"]
    assert url.startswith(f"ws://127.0.0.1:{slack.base_url.rsplit(':', 1)[1]}/_socket?ticket=")
    assert url.endswith(f"&app_id={slack.app_id}")
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:  # not an upgrade: ticket left unused
            assert response.status == 400
        ws = await http.ws_connect(url)
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        for reused in (url, slack.base_url + "/_socket?ticket=made-up"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(reused)
            assert caught.value.status == 401
        await ws.close()


async def test_socket_answers_pings_and_counts_connections(slack: SlackEmulator) -> None:
    async with aiohttp.ClientSession() as http:
        first = await open_socket(slack, http, autoping=False)
        await first.ping(b"sdk-ping-pong:1")
        pong = await first.receive(timeout=5)
        assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"sdk-ping-pong:1")
        second = await http.ws_connect(
            (
                await AsyncWebClient(token=slack.app_token, base_url=slack.api_url).apps_connections_open(
                    app_token=slack.app_token
                )
            )["url"]
        )
        hello = await second.receive_json(timeout=5)
        assert hello["num_connections"] == 2 and slack.socket_connections == 2
        # Envelopes go to the newest connection; acks are matched by envelope_id.
        sending = asyncio.create_task(slack.send_socket_envelope("interactive", {"n": 1}))
        envelope = await second.receive_json(timeout=5)
        assert envelope["type"] == "interactive" and envelope["payload"] == {"n": 1}
        await second.send_json({"envelope_id": "not-this-one"})
        await second.send_str("not json")
        await second.send_json({"envelope_id": envelope["envelope_id"]})
        assert await asyncio.wait_for(sending, 5) == {"envelope_id": envelope["envelope_id"]}
        assert [a["envelope_id"] for a in slack.socket_acks] == ["not-this-one", envelope["envelope_id"]]
        await second.close()
        await first.close()


async def test_socket_envelope_errors(slack: SlackEmulator) -> None:
    with pytest.raises(RuntimeError, match="no Socket Mode client"):
        await slack.send_socket_envelope("events_api", {})
    with pytest.raises(TimeoutError):
        await slack.wait_for_socket_connection(timeout=0.1)
    async with aiohttp.ClientSession() as http:
        ws = await open_socket(slack, http)
        await slack.wait_for_socket_connection(timeout=1)
        with pytest.raises(ValueError, match="events_api"):
            await slack.send_socket_envelope("block_actions", {})
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no ack"):
            await slack.send_socket_envelope("events_api", {"n": 1}, timeout=0.2)
        assert time.monotonic() - started < 2
        assert (await ws.receive_json(timeout=5))["payload"] == {"n": 1}  # never acked
        # The client goes away without acking: the sender learns at once.
        sending = asyncio.create_task(slack.send_socket_envelope("events_api", {"n": 2}, timeout=30))
        assert (await ws.receive_json(timeout=5))["payload"] == {"n": 2}
        await ws.close()
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(sending, 5)


async def test_stop_closes_sockets_cleanly() -> None:
    slack = SlackEmulator()
    await slack.start()
    async with aiohttp.ClientSession() as http:
        ws = await open_socket(slack, http)
        sending = asyncio.create_task(slack.send_socket_envelope("events_api", {}, timeout=30))
        assert (await ws.receive_json(timeout=5))["type"] == "events_api"
        started = time.monotonic()
        stopping = asyncio.create_task(slack.stop())
        closing = await ws.receive(timeout=5)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert closing.data == aiohttp.WSCloseCode.GOING_AWAY
        await asyncio.wait_for(stopping, 5)
        assert time.monotonic() - started < 2
        assert ws.closed and slack.socket_connections == 0
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(sending, 1)


# ----------------------------------------------------------------------- spec conformance

# Errors any method may answer, documented in the spec's generic section rather than per
# method, or by Slack's docs for every method.
GENERIC_ERRORS = {
    "not_authed",
    "invalid_auth",
    "invalid_arguments",
    "unknown_method",
    "ratelimited",
    "invalid_json",  # listed for almost every method; absent where the spec lists nothing
    # App-level (xapp-) tokens appeared in 2021, after this 2020 spec; every method answers
    # this error when given the wrong kind of token.
    "not_allowed_token_type",
    # Docs.slack.dev list it for every method that needs a scope; the 2020 spec only for some.
    "missing_scope",
}

# Per-method errors the emulator returns that the 2020 spec does not list for that method.
SPEC_PREDATES: dict[str, dict[str, str]] = {
    "chat.postMessage": {
        "invalid_blocks": "Block Kit validation error; added to the docs after 2020",
        "invalid_metadata_format": "message metadata arrived in 2022, after the spec",
        # Undocumented, but what Slack answers a bot token opening a DM with a bot user
        # (HubSpot/slack-client#90; im.open / conversations.open reports); posting to a
        # user id opens that DM first.
        "cannot_dm_bot": "posting to a bot user's id: the DM cannot be opened",
    },
    "chat.postEphemeral": {
        "not_in_channel": "current docs list it: the bot must be in the channel",
        "invalid_blocks": "Block Kit validation error; added to the docs after 2020",
    },
    "chat.update": {
        "invalid_blocks": "Block Kit validation error; added to the docs after 2020",
        "invalid_metadata_format": "message metadata arrived in 2022, after the spec",
    },
    "conversations.open": {
        "cannot_dm_bot": "undocumented; Slack's answer to a bot token opening a DM with a "
        "bot user (HubSpot/slack-client#90)",
    },
    "conversations.history": {
        "not_in_channel": "bot tokens reading a public channel they are not in (well known)",
        "invalid_cursor": "answered by every cursor-paginated method",
    },
    "conversations.replies": {
        "not_in_channel": "same membership rule as conversations.history",
        "invalid_cursor": "answered by every cursor-paginated method",
    },
    "pins.add": {
        "not_in_channel": "the bot must be in the channel to pin (brief, current docs)",
    },
    "pins.remove": {
        "channel_not_found": "the spec omits it here though pins.add and pins.list have it",
        "not_in_channel": "the bot must be in the channel to unpin, as for pins.add",
        "no_pin": "current docs.slack.dev show no_pin; the 2020 spec says not_pinned",
    },
    "reactions.get": {
        "channel_not_found": "unknown or invisible channel, as for every channel argument",
    },
    # The spec documents no error names at all for views.*; these come from docs.slack.dev.
    "views.open": {
        "invalid_trigger_id": "docs.slack.dev views.open",
        "trigger_exchanged": "docs.slack.dev views.open",
        "trigger_expired": "docs.slack.dev views.open",
    },
    "views.push": {
        "invalid_trigger_id": "docs.slack.dev views.push",
        "trigger_exchanged": "docs.slack.dev views.push",
        "trigger_expired": "docs.slack.dev views.push",
    },
    "views.update": {
        "view_not_found": "docs.slack.dev views.update",
        "hash_conflict": "docs.slack.dev views.update",
    },
    "views.publish": {
        "user_not_found": "publishing to an unknown user",
        "hash_conflict": "docs.slack.dev views.publish",
    },
}


async def test_undeclared_error_is_an_emulator_bug(
    slack: SlackEmulator, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler raising a name it did not declare answers 500, so declarations stay true."""

    def sloppy(emulator: SlackEmulator, args: Any) -> dict[str, Any]:
        raise SlackError("made_up_error")

    monkeypatch.setitem(api._REGISTRY, "test.sloppy", api.ApiMethod("test.sloppy", sloppy, frozenset(), "bot"))
    with pytest.raises(SlackApiError) as caught:
        await client.api_call("test.sloppy")
    assert caught.value.response.status_code == 500
    assert "made_up_error" in caught.value.response.data


def documented_errors(spec: dict[str, Any], method: str) -> set[str]:
    """The error enum of a method's error response in the OpenAPI spec (may be empty)."""
    errors: set[str] = set()
    for operation in spec["paths"]["/" + method].values():
        for response in operation["responses"].values():
            error = response.get("schema", {}).get("properties", {}).get("error", {})
            errors.update(error.get("enum", []))
    return errors


def test_error_names_match_openapi_spec() -> None:
    spec = json.loads(SPEC_PATH.read_text())
    checked = []
    for method in implemented_methods():
        if "/" + method not in spec["paths"]:
            continue  # files.*External and apps.connections.open are newer than the spec
        checked.append(method)
        documented = documented_errors(spec, method)
        allowed = documented | GENERIC_ERRORS | set(SPEC_PREDATES.get(method, {}))
        undocumented = possible_errors(method) - allowed
        assert not undocumented, f"{method} can answer {sorted(undocumented)}"
        # Keep the allow-list honest: every entry is needed and used.
        for error in SPEC_PREDATES.get(method, {}):
            assert error not in documented, f"{method}: {error} is documented, drop it"
            assert error in possible_errors(method), f"{method}: {error} is never returned"
    assert len(checked) >= 20
    assert set(SPEC_PREDATES) <= set(checked)
