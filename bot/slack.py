"""One way to talk to Slack: the configured AsyncWebClient, and the few reads the services share."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, cast

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.metrics import SLACK_API_ERRORS

log = logging.getLogger("postmortem_bot.slack")

# What a Slack call can raise once the client's own retries are spent: an error answer or
# status (SlackApiError), a failed upload to the upload URL (SlackRequestError), a timeout
# (never retried: the call may have taken effect), a connection that stayed down.
SLACK_FAILURES = (SlackClientError, TimeoutError, aiohttp.ClientError)

# Enough to ride out a short outage or a rate-limit window without holding a listener forever.
RATE_LIMIT_RETRIES = 4
SERVER_ERROR_RETRIES = 3
REQUEST_TIMEOUT_S = 15


class MeteredWebClient(AsyncWebClient):
    """The Web API client that counts each call failing after its retries, by method and error."""

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return await super().api_call(api_method, **kwargs)
        except (*SLACK_FAILURES,) as exc:
            SLACK_API_ERRORS.labels(method=api_method, error=error_code(exc)).inc()
            raise


def create_client(settings: Settings) -> AsyncWebClient:
    """The bot's Web API client: base URL from SLACK_API_URL, and retries slack_sdk does not add by default.

    slack_sdk retries only connection errors out of the box; 429 (honouring Retry-After) and
    500/503 are added here so that a busy Slack slows the bot down instead of losing work.
    """
    return MeteredWebClient(
        token=settings.bot_token,
        base_url=settings.slack_api_url,
        timeout=REQUEST_TIMEOUT_S,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        ],
    )


async def check_app_token(settings: Settings) -> None:
    """Ask Slack once for a Socket Mode URL with SLACK_APP_TOKEN; a refusal is a ConfigError."""
    from bot.config import ConfigError

    client = AsyncWebClient(token=settings.app_token, base_url=settings.slack_api_url, timeout=REQUEST_TIMEOUT_S)
    try:
        await client.apps_connections_open(app_token=settings.app_token or "")
    except SlackApiError as exc:
        code = error_code(exc)
        if code in ("invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive"):
            raise ConfigError(
                f"SLACK_APP_TOKEN was refused by Slack ({code}): it must be an app-level token (xapp-) "
                "with the connections:write scope"
            ) from exc
        log.warning("apps.connections.open failed (%s); Socket Mode will keep retrying", code)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Socket Mode cannot start without Slack; slack_sdk would retry it every 10 s forever.
        raise ConfigError(
            f"cannot reach Slack at {settings.slack_api_url} ({exc.__class__.__name__}): "
            "check SLACK_API_URL (default https://slack.com/api/) and the network or proxy"
        ) from exc


def error_code(exc: BaseException) -> str:
    """Slack's error name ("not_in_channel"), else the HTTP status ("http_500"), else what
    went wrong on the way ("upload_failed", "timeout", the exception's name)."""
    response = getattr(exc, "response", None)
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    if response is not None:
        return f"http_{getattr(response, 'status_code', 'error')}"
    if isinstance(exc, SlackRequestError) and "upload" in str(exc).lower():
        return "upload_failed"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__


async def fetch_message(client: AsyncWebClient, channel: str, ts: str) -> dict[str, Any] | None:
    """The message `ts` in `channel`, asked of Slack; None if Slack has no such message.

    conversations.history never returns thread replies and treats `latest` as exclusive unless
    `inclusive` is set, so a reply is looked up with conversations.replies; in both cases the
    returned ts is checked, because both methods happily return a neighbour instead.
    """
    history = await client.conversations_history(channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
    message: Any
    for message in history.get("messages", []):
        if message.get("ts") == ts:
            return cast(dict[str, Any], message)
    try:
        replies = await client.conversations_replies(
            channel=channel, ts=ts, latest=ts, oldest=ts, inclusive=True, limit=2
        )
    except SlackApiError as exc:
        if error_code(exc) == "thread_not_found":
            return None
        raise
    for message in replies.get("messages", []):
        if message.get("ts") == ts:
            return cast(dict[str, Any], message)
    return None


async def find_by_metadata(
    client: AsyncWebClient, conversation: str, event_type: str, keys: Iterable[str], *, oldest: str
) -> dict[str, tuple[str, str]]:
    """(channel, ts) of each of the bot's messages in `conversation` (a channel, or a
    person's DM by their user id) whose metadata is `event_type` with one of `keys`, posted
    since `oldest`; a key with no message is left out. One read of the conversation for all
    the keys (conversations.history is Tier 3: about 50 calls a minute), every page of it:
    a busy channel can hold more than one page since then.
    """
    wanted = set(keys)
    found: dict[str, tuple[str, str]] = {}
    channel = conversation
    if channel.startswith(("U", "W")):
        opened = await client.conversations_open(users=channel)
        channel = opened["channel"]["id"]
    cursor = None
    while wanted - found.keys():
        history = await client.conversations_history(
            channel=channel, oldest=oldest, include_all_metadata=True, limit=200, cursor=cursor
        )
        message: dict[str, Any]
        for message in history.get("messages", []):
            metadata: dict[str, Any] = message.get("metadata") or {}
            key = (metadata.get("event_payload") or {}).get("key")
            if metadata.get("event_type") == event_type and key in wanted and key not in found:
                found[key] = (channel, message["ts"])
        cursor = (history.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return found
