"""Slack's rate limits: each Web API method's tier, and chat.postMessage's limit per channel.

Slack limits calls per method per workspace by tier (Tier 1: 1+ a minute, Tier 2: 20+,
Tier 3: 50+, Tier 4: 100+), and chat.postMessage to about one message a second per channel,
each with bursts allowed; past a limit it answers HTTP 429 ``ratelimited`` with
``Retry-After`` in seconds (../shared/slack-reference/README.md, "Platform rules"). Here each
limit is a token bucket that holds a minute's worth of calls (for chat.postMessage,
BURST_PER_CHANNEL messages) and refills at the tier's rate, on real (monotonic) time: rate
limits are about how fast the bot calls, not about the workspace clock a test moves.

Methods Slack calls "special" and leaves out of the tiers (auth.test, chat.getPermalink) are
not limited here, nor is apps.connections.open (Tier 1: the Socket Mode tests reconnect on
purpose more often than once a minute). chat.postMessage's workspace-wide ceiling ("several hundred messages a
minute" in Slack's docs, not in the reference) is not enforced either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BURST_PER_CHANNEL", "PER_MINUTE", "TIERS", "RateLimits"]

PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
"""Calls a minute each tier allows (Slack's documented floor for it)."""

TIERS: dict[str, int] = {
    "pins.add": 2,
    "pins.remove": 2,
    "pins.list": 2,
    "chat.update": 3,
    "chat.delete": 3,
    "conversations.join": 3,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.open": 3,
    "reactions.get": 3,
    "chat.postEphemeral": 4,
    "conversations.members": 4,
    "users.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "views.publish": 4,
}
"""Each method's tier, as Slack's method reference gives it."""

POST_PER_SECOND = 1.0
BURST_PER_CHANNEL = 20
"""chat.postMessage: about one a second per channel, a burst of this many first."""


@dataclass
class Bucket:
    capacity: float
    per_second: float
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """0 if a call may go now (and count it), else the seconds until one may."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class RateLimits:
    """The emulated workspace's limits; :meth:`retry_after` is asked before each call."""

    def __init__(self, *, enabled: bool = True, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.monotonic = monotonic
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.limited: dict[str, int] = {}
        """Calls answered 429 by these limits, by method."""

    def retry_after(self, method: str, channel: str | None) -> int | None:
        """None if the call may go now, else the whole seconds to wait (Retry-After)."""
        if not self.enabled:
            return None
        now = self.monotonic()
        if method == "chat.postMessage":
            if not channel:
                return None
            key, capacity, rate = (method, channel), BURST_PER_CHANNEL, POST_PER_SECOND
        elif method in TIERS:
            per_minute = PER_MINUTE[TIERS[method]]
            key, capacity, rate = (method, ""), per_minute, per_minute / 60
        else:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(capacity, rate, capacity, now)
        wait = bucket.take(now)
        if not wait:
            return None
        self.limited[method] = self.limited.get(method, 0) + 1
        return max(1, math.ceil(wait))
