"""Fault injection: scripted failures and delays for one method, and seeded random chaos.

Why this exists: the bot's retry handlers, its exactly-once sends and its answers to a
Slack that fails are only tested if Slack fails.  :class:`FaultInjection` is the part of
:class:`slack_emulator.SlackEmulator` that makes it fail on purpose; every fault happens
before the call has any effect, so a retry is always safe (see :meth:`FaultInjection.chaos`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from slack_emulator.api import JSON, METHODS, Reply

__all__ = ["TRIGGER_BOUND_METHODS", "UPLOAD_TARGET", "FaultInjection"]

TRIGGER_BOUND_METHODS = frozenset({"views.open", "views.push"})
"""Methods that spend a trigger id: exempt from chaos unless asked (see chaos())."""
UPLOAD_TARGET = "(upload)"
"""The name chaos gives the upload URL of files.getUploadURLExternal in its counts."""


@dataclass(frozen=True)
class Fault:
    status: int
    error: str | None
    retry_after: int


@dataclass
class Chaos:
    """Seeded random faults: each target (method, or the upload URL) draws from its own
    stream, seeded by (seed, target), so one method's sequence of faults does not depend on
    how its calls interleave with other methods' calls."""

    seed: int
    rate_limited: float
    server_error: float
    slow: float
    slow_seconds: float
    retry_after: int
    exempt: frozenset[str]
    uploads: bool
    streams: dict[str, random.Random] = field(default_factory=dict)

    def applies_to(self, target: str) -> bool:
        return target not in self.exempt and (target != UPLOAD_TARGET or self.uploads)

    def draw(self, target: str) -> str | None:
        """None (answer normally), "rate_limited", "server_error" or "slow"."""
        stream = self.streams.get(target)
        if stream is None:
            stream = self.streams[target] = random.Random(f"{self.seed}/{target}")
        roll = stream.random()
        for fault, rate in (
            ("rate_limited", self.rate_limited),
            ("server_error", self.server_error),
            ("slow", self.slow),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return None


class FaultInjection:
    """The emulator's faults: what :meth:`fail`, :meth:`delay` and :meth:`chaos` ask for.

    A part of :class:`slack_emulator.SlackEmulator` (which calls :meth:`_injected_fault`
    before answering each Web API call), kept apart so the fault rules read on their own.
    """

    _stopping: asyncio.Event
    """Set by the server while it stops (the emulator's): an injected pause ends at once."""

    def __init__(self) -> None:
        self._faults: dict[str, deque[Fault]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._chaos: Chaos | None = None
        self.chaos_log: list[JSON] = []
        """Every fault chaos injected, in order: target (method or "(upload)"), fault
        ("rate_limited", "server_error", "slow"), seed."""
        self.chaos_calls = 0
        """How many requests chaos drew for (calls of exempt methods not counted)."""

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        status 429 answers ``ratelimited`` with ``Retry-After: retry_after`` (default 1);
        status 5xx answers a short text body; any other status answers
        ``{"ok": false, "error": error}`` (``error`` required).
        """
        self._check_injectable(method, times)
        if status != 429 and status < 500 and error is None:
            raise ValueError(f"status {status} needs an error name")
        fault = Fault(status, error, 1 if retry_after is None else retry_after)
        self._faults.setdefault(method, deque()).extend([fault] * times)

    def clear_faults(self, method: str) -> None:
        """Forget the injected failures still queued for `method` (Slack recovers)."""
        self._faults.pop(method, None)

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` sleep ``seconds`` before answering."""
        self._check_injectable(method, times)
        self._delays.setdefault(method, deque()).extend([seconds] * times)

    def chaos(
        self,
        *,
        seed: int,
        rate_limited: float = 0.10,
        server_error: float = 0.05,
        slow: float = 0.05,
        slow_seconds: float = 0.5,
        retry_after: int = 1,
        exempt: Iterable[str] = TRIGGER_BOUND_METHODS,
        uploads: bool = True,
    ) -> None:
        """Answer a random share of Web API calls badly, reproducibly, until :meth:`calm`.

        Each call (and each POST to an upload URL, unless ``uploads`` is False) draws once:
        with probability ``rate_limited`` it is answered 429 ``ratelimited`` with
        ``Retry-After: retry_after`` (kept small so tests stay fast; Slack's are often
        longer), with ``server_error`` HTTP 500, with ``slow`` it waits ``slow_seconds``
        and is then answered normally; otherwise it is answered normally at once.  Every
        target draws from its own stream seeded by ``(seed, target)``: the same seed gives
        the n-th call of a method the same fate whatever the other methods do.  Scripted
        :meth:`fail` and :meth:`delay` entries come first and do not draw.

        Every fault happens *before* the call has any effect: a 429 or 500 here means
        nothing was posted, uploaded or changed, so a retry is always safe.  Real Slack
        promises that for 429 only; a 500 (or a timeout) may come after the message was
        posted.  The bot's client (bot/slack.py) still retries 500/503 up to 3 times, as
        slack_sdk's AsyncServerErrorRetryHandler does, so against real Slack a 500 on a
        non-idempotent call can duplicate it; a timed-out call is never retried by the
        client (slack_sdk raises TimeoutError, which its connection-error handler does not
        match).  ``slow_seconds`` must stay below the client's timeout for the same reason:
        a call the client gave up on would still take effect here, as it can in Slack.

        ``exempt`` methods never draw.  By default they are the trigger-bound ones
        (views.open, views.push): Slack accepts a trigger id once and for 3 s, so after a
        500 that came after the view opened a retry gets ``trigger_exchanged``, and a 429's
        wait can outlast the trigger; no retry can help, the person presses again.  Soak
        tests leave them out and test that answer on its own.
        """
        for name, rate in (("rate_limited", rate_limited), ("server_error", server_error), ("slow", slow)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a probability, got {rate}")
        if rate_limited + server_error + slow > 1:
            raise ValueError("the fault rates add up to more than 1")
        exempt = frozenset(exempt)
        unknown = sorted(m for m in exempt if m not in METHODS)
        if unknown:
            raise ValueError(f"{unknown} are not Web API methods the emulator implements")
        self._chaos = Chaos(seed, rate_limited, server_error, slow, slow_seconds, retry_after, exempt, uploads)

    def calm(self) -> None:
        """Turn chaos off: every later call is answered normally (scripted faults aside).
        :attr:`chaos_log` and :attr:`chaos_calls` keep what happened."""
        self._chaos = None

    @property
    def chaos_seed(self) -> int | None:
        """The seed of the chaos in force, or None when calm."""
        return self._chaos.seed if self._chaos is not None else None

    def chaos_counts(self) -> dict[str, int]:
        """How many requests chaos drew for, and how many faults of each kind it injected."""
        counts = {"calls": self.chaos_calls, "rate_limited": 0, "server_error": 0, "slow": 0}
        for entry in self.chaos_log:
            counts[entry["fault"]] += 1
        return counts

    async def _injected_fault(self, method: str) -> Reply | None:
        """Before a Web API call: its scripted delay, then its scripted fault, else a chaos
        draw.  None means answer the call normally."""
        delays = self._delays.get(method)
        if delays:
            await self._pause(delays.popleft())
        faults = self._faults.get(method)
        if faults:
            return self._fault_reply(faults.popleft())
        return await self._chaos_fault(method)

    async def _chaos_fault(self, target: str) -> Reply | None:
        """Draw for one request: an error reply, or None after an optional slow pause."""
        chaos = self._chaos
        if chaos is None or not chaos.applies_to(target):
            return None
        self.chaos_calls += 1
        fault = chaos.draw(target)
        if fault is None:
            return None
        self.chaos_log.append({"target": target, "fault": fault, "seed": chaos.seed})
        if fault == "slow":
            await self._pause(chaos.slow_seconds)
            return None
        if fault == "rate_limited":
            return self._fault_reply(Fault(429, None, chaos.retry_after))
        return Reply(500, "500 upstream error (chaos)")

    @staticmethod
    def _check_injectable(method: str, times: int) -> None:
        """Refuse a misspelt method name: the fault would silently never fire."""
        if method not in METHODS:
            raise ValueError(f"{method} is not a Web API method the emulator implements")
        if times < 1:
            raise ValueError("times must be at least 1")

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        if fault.status == 429:
            return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})
        if fault.status >= 500:
            return Reply(fault.status, f"{fault.status} upstream error (injected)")
        return Reply(fault.status, {"ok": False, "error": fault.error})

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
