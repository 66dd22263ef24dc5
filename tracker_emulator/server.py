"""What both emulators share: an aiohttp server on a free port, a clock, scripted faults,
seeded random chaos, and sending signed webhooks."""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Fault:
    """One scripted failure of the next matching call.

    `after=True` applies the call first, then fails it (the lost answer: the create
    happened, the client does not know); `delay` stalls the answer (a timeout)."""

    match: str  # a substring of "METHOD /path" (Jira) or of the GraphQL operation (Linear)
    status: int = 500
    after: bool = False
    retry_after: int | None = None
    delay: float = 0.0


@dataclass
class Chaos:
    """Seeded random faults (see EmulatorServer.chaos): each target draws from its own
    stream, seeded by (seed, target), so one route's faults do not depend on how its calls
    interleave with other routes' calls."""

    seed: int
    rate_limited: float
    server_error: float
    slow: float
    slow_seconds: float
    retry_after: int
    after_share: float
    streams: dict[str, random.Random] = field(default_factory=dict)

    def draw(self, target: str) -> tuple[str, Fault | None]:
        """("ok" | "slow", None) or ("rate_limited" | "server_error", the fault)."""
        stream = self.streams.get(target)
        if stream is None:
            stream = self.streams[target] = random.Random(f"{self.seed}/{target}")
        roll = stream.random()
        if roll < self.rate_limited:
            return "rate_limited", Fault(target, 429, retry_after=self.retry_after)
        roll -= self.rate_limited
        if roll < self.server_error:
            status = stream.choice((500, 502, 503))
            return "server_error", Fault(target, status, after=stream.random() < self.after_share)
        roll -= self.server_error
        return ("slow", None) if roll < self.slow else ("ok", None)


class EmulatorServer:
    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or _SystemClock()
        self.faults: deque[Fault] = deque()
        self.calls: list[str] = []
        self._chaos: Chaos | None = None
        self.chaos_log: list[dict[str, Any]] = []
        """Every fault chaos injected, in order: target, fault, status, after, seed."""
        self._runner: web.AppRunner | None = None
        self.url = ""

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        # A stalled answer (a scripted fault) must not hold up stopping.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(
        self, match: str, status: int = 500, *, after: bool = False, retry_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.faults.append(Fault(match, status, after, retry_after, delay))

    def _fault_for(self, what: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.match in what:
                self.faults.remove(fault)
                return fault
        return None

    def chaos(
        self,
        *,
        seed: int,
        rate_limited: float = 0.10,
        server_error: float = 0.05,
        slow: float = 0.05,
        slow_seconds: float = 0.3,
        retry_after: int = 1,
        after_share: float = 0.5,
    ) -> None:
        """Answer a random share of API calls badly, reproducibly, until :meth:`calm`.

        Each call draws once from its target's stream (Jira: method and route with ids
        blanked, "GET /rest/api/3/issue/{id}"; Linear: the operation's first words): with
        probability `rate_limited` it is answered 429 (Linear: RATELIMITED) with
        `Retry-After: retry_after`, with `server_error` a 500, 502 or 503, with `slow` it waits
        `slow_seconds` and is answered normally. A share `after_share` of the server errors
        come *after* the call took effect, as a real tracker's can (the issue was created,
        the answer lost), so a client that retries blindly makes duplicates. Scripted
        :meth:`fail_next` faults come first and do not draw."""
        for name, rate in (("rate_limited", rate_limited), ("server_error", server_error), ("slow", slow)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a probability, got {rate}")
        if rate_limited + server_error + slow > 1:
            raise ValueError("the fault rates add up to more than 1")
        self._chaos = Chaos(seed, rate_limited, server_error, slow, slow_seconds, retry_after, after_share)

    def calm(self) -> None:
        """Turn chaos off; :attr:`chaos_log` keeps what happened."""
        self._chaos = None

    def chaos_counts(self) -> dict[str, int]:
        counts = {"rate_limited": 0, "server_error": 0, "after": 0, "slow": 0}
        for entry in self.chaos_log:
            counts[entry["fault"]] += 1
            counts["after"] += bool(entry.get("after"))
        return counts

    async def _chaos_fault(self, target: str) -> Fault | None:
        """A chaos draw for one call: a fault to answer, or None (after a slow pause, maybe)."""
        chaos = self._chaos
        if chaos is None:
            return None
        kind, fault = chaos.draw(target)
        if kind == "ok":
            return None
        entry: dict[str, Any] = {"target": target, "fault": kind, "seed": chaos.seed}
        if fault is not None:
            entry.update(status=fault.status, after=fault.after)
        self.chaos_log.append(entry)
        if kind == "slow":
            await asyncio.sleep(chaos.slow_seconds)
        return fault

    def now(self) -> datetime:
        return self.clock.now()

    @staticmethod
    async def post_signed(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        """POST a webhook body exactly as signed (the bytes the signature covers)."""
        raw = json.dumps(body).encode()
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=raw, headers={"Content-Type": "application/json", **headers}) as response:
                text = await response.text()
                try:
                    return response.status, json.loads(text)
                except ValueError:
                    return response.status, text

    @staticmethod
    async def stall(fault: Fault) -> None:
        if fault.delay:
            await asyncio.sleep(fault.delay)
