"""The emulator grants the bot token exactly manifest.yml's bot scopes and answers
``missing_scope`` as Slack does, spoken to over HTTP by the real slack_sdk client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slack_emulator import SlackEmulator
from slack_emulator.api import METHODS, possible_errors

MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"

ALICE, BOB = "U0ALICE001", "U0BOB00001"
PUBLIC, PRIVATE = "C0PUBLIC01", "G0PRIVATE1"

# Every scope any emulated method needs: a test takes one away to see the refusal.
ALL_SCOPES = (
    "chat:write",
    "channels:join",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "im:write",
    "mpim:write",
    "pins:write",
    "pins:read",
    "reactions:read",
    "users:read",
    "users:read.email",
    "files:write",
)


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(scopes=ALL_SCOPES) as emulator:
        bot = emulator.bot_user_id
        emulator.add_user(ALICE, "alice")
        emulator.add_user(BOB, "bob")
        emulator.add_channel(PUBLIC, "inc-public", members=[ALICE, bot])
        emulator.add_channel(PRIVATE, "inc-private", is_private=True, members=[ALICE, bot])
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def refusal(call: Any) -> tuple[int, dict[str, Any]]:
    """Await a call that must fail; its HTTP status and body."""
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value.response.status_code, dict(caught.value.response.data)


def without(scope: str) -> tuple[str, ...]:
    return tuple(s for s in ALL_SCOPES if s != scope)


def test_the_bot_token_holds_exactly_the_manifests_bot_scopes() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert SlackEmulator().scopes == tuple(manifest["oauth_config"]["scopes"]["bot"])
    assert SlackEmulator(scopes=["chat:write"]).scopes == ("chat:write",)


async def test_a_method_without_its_scope_answers_missing_scope_and_does_nothing(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.scopes = without("chat:write")
    status, body = await refusal(client.chat_postMessage(channel=PUBLIC, text="hello"))
    assert status == 200
    assert body == {
        "ok": False,
        "error": "missing_scope",
        "needed": "chat:write",
        "provided": ",".join(without("chat:write")),
    }
    assert slack.messages(PUBLIC) == []
    assert slack.calls[-1]["error"] == "missing_scope"


@pytest.mark.parametrize(
    ("kind", "method", "needed"),
    [
        ("public", "conversations.history", "channels:history"),
        ("private", "conversations.history", "groups:history"),
        ("im", "conversations.history", "im:history"),
        ("mpim", "conversations.history", "mpim:history"),
        ("public", "conversations.replies", "channels:history"),
        ("im", "conversations.replies", "im:history"),
        ("public", "conversations.info", "channels:read"),
        ("private", "conversations.info", "groups:read"),
        ("im", "conversations.info", "im:read"),
        ("mpim", "conversations.info", "mpim:read"),
        ("private", "conversations.members", "groups:read"),
        ("im", "conversations.members", "im:read"),
    ],
)
async def test_conversations_need_the_scope_of_the_conversations_type(
    slack: SlackEmulator, client: AsyncWebClient, kind: str, method: str, needed: str
) -> None:
    channel = {
        "public": PUBLIC,
        "private": PRIVATE,
        "im": slack.open_dm(ALICE),
        "mpim": (await client.conversations_open(users=f"{ALICE},{BOB}"))["channel"]["id"],
    }[kind]
    ts = (await client.chat_postMessage(channel=channel, text="x"))["ts"]
    args = {"channel": channel, "ts": ts} if method == "conversations.replies" else {"channel": channel}
    slack.scopes = without(needed)
    status, body = await refusal(client.api_call(method, http_verb="GET", params=args))
    assert (status, body["error"], body["needed"]) == (200, "missing_scope", needed)
    assert body["provided"] == ",".join(without(needed))
    slack.scopes = ALL_SCOPES
    assert (await client.api_call(method, http_verb="GET", params=args))["ok"]


@pytest.mark.parametrize(("users", "needed"), [(ALICE, "im:write"), (f"{ALICE},{BOB}", "mpim:write")])
async def test_opening_a_dm_needs_im_write_and_a_group_dm_mpim_write(
    slack: SlackEmulator, client: AsyncWebClient, users: str, needed: str
) -> None:
    slack.scopes = without(needed)
    status, body = await refusal(client.conversations_open(users=users))
    assert (status, body["error"], body["needed"]) == (200, "missing_scope", needed)
    assert not any(c["is_im"] or c["is_mpim"] for c in slack.channels.values())


async def test_auth_test_and_views_need_no_scope(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.scopes = ()
    assert (await client.auth_test())["ok"]
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Post-mortem"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
    }
    assert (await client.views_open(trigger_id=slack.issue_trigger_id(), view=view))["ok"]
    assert (await client.views_publish(user_id=ALICE, view={**view, "type": "home"}))["ok"]
    status, body = await refusal(client.users_info(user=ALICE))
    assert body == {"ok": False, "error": "missing_scope", "needed": "users:read", "provided": ""}


async def test_the_app_level_token_needs_connections_write() -> None:
    async with SlackEmulator(app_scopes=()) as slack:
        app = AsyncWebClient(base_url=slack.api_url)
        status, body = await refusal(app.apps_connections_open(app_token=slack.app_token))
        assert (status, body["needed"]) == (200, "connections:write")
    async with SlackEmulator() as slack:
        app = AsyncWebClient(base_url=slack.api_url)
        assert (await app.apps_connections_open(app_token=slack.app_token))["ok"]


async def test_users_info_shows_the_email_only_with_users_read_email(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    slack.add_user("U0CAROL001", "carol", email="carol@corp.example")
    slack.add_user("U0PAGER001", "pager", is_bot=True)
    assert (await client.users_info(user=ALICE))["user"]["profile"]["email"] == "alice@example.com"
    assert (await client.users_info(user="U0CAROL001"))["user"]["profile"]["email"] == "carol@corp.example"
    assert "email" not in (await client.users_info(user="U0PAGER001"))["user"]["profile"]
    slack.scopes = without("users:read.email")
    profile = (await client.users_info(user=ALICE))["user"]["profile"]
    assert "email" not in profile and profile["display_name"] == "alice"
    assert "email" not in slack.users[ALICE]["profile"]  # the snapshot is what users.info gives
    assert "users:read.email" in SlackEmulator().scopes  # the manifest grants it: tickets match owners by email


def test_every_method_that_needs_a_scope_may_answer_missing_scope() -> None:
    for name, method in METHODS.items():
        assert ("missing_scope" in possible_errors(name)) == (method.scope is not None), name
