"""The emulator limits calls as Slack documents (../shared/slack-reference/README.md): per
method by tier, chat.postMessage per channel, answering 429 with Retry-After. Time is the
limiter's own clock, moved by hand, so nothing here depends on how fast the test runs."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slack_emulator import SlackEmulator
from slack_emulator.rate_limits import BURST_PER_CHANNEL, PER_MINUTE, TIERS

ALICE, BOB = "UALICE0001", "UBOB000001"


@pytest.fixture
async def slack():
    emulator = SlackEmulator()
    emulator.add_user(ALICE, "alice")
    emulator.add_user(BOB, "bob")
    emulator.add_channel("CBUSY00001", "busy", members=[emulator.bot_user_id])
    emulator.add_channel("CQUIET0001", "quiet", members=[emulator.bot_user_id])
    now = [1000.0]
    emulator.rate_limits.monotonic = lambda: now[0]
    await emulator.start()
    yield emulator, now
    await emulator.stop()


def client(emulator: SlackEmulator) -> AsyncWebClient:
    """No retry handler: the 429 itself is what is looked at."""
    return AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)


async def refused(call) -> tuple[int, str | None]:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value.response.status_code, caught.value.response.headers.get("Retry-After")


async def test_chat_post_message_is_limited_per_channel(slack) -> None:
    emulator, now = slack
    web = client(emulator)
    for n in range(BURST_PER_CHANNEL):
        await web.chat_postMessage(channel="CBUSY00001", text=f"burst {n}")
    assert await refused(web.chat_postMessage(channel="CBUSY00001", text="one too many")) == (429, "1")
    await web.chat_postMessage(channel="CQUIET0001", text="another channel is not held back")
    await web.chat_postMessage(channel=BOB, text="nor is a DM")
    now[0] += 1.0
    await web.chat_postMessage(channel="CBUSY00001", text="a second later, one more")
    assert (await refused(web.chat_postMessage(channel="CBUSY00001", text="and no more")))[0] == 429
    assert emulator.rate_limits.limited == {"chat.postMessage": 2}
    assert len(emulator.messages("CBUSY00001")) == BURST_PER_CHANNEL + 1, "a refused post posts nothing"


@pytest.mark.parametrize(("method", "retry_after"), [("users.info", "1"), ("conversations.history", "2")])
async def test_methods_are_limited_by_their_tier(slack, method: str, retry_after: str) -> None:
    emulator, now = slack
    web = client(emulator)

    def call():
        if method == "users.info":
            return web.users_info(user=ALICE)
        return web.conversations_history(channel="CBUSY00001")

    allowed = PER_MINUTE[TIERS[method]]
    for _ in range(allowed):
        await call()
    # A minute's worth went at once; the next waits for the tier's rate (100 or 50 a minute).
    assert await refused(call()) == (429, retry_after)
    now[0] += 60.0
    for _ in range(allowed):
        await call()
    assert (await refused(call()))[0] == 429


async def test_limits_can_be_switched_off() -> None:
    emulator = SlackEmulator(rate_limits=False)
    emulator.add_user(ALICE, "alice")
    await emulator.start()
    try:
        web = client(emulator)
        for _ in range(PER_MINUTE[TIERS["users.info"]] + 5):
            await web.users_info(user=ALICE)
    finally:
        await emulator.stop()
