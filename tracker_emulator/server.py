"""What both emulators share: an aiohttp server on a free port, a clock, scripted faults,
and sending signed webhooks."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
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


class EmulatorServer:
    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or _SystemClock()
        self.faults: deque[Fault] = deque()
        self.calls: list[str] = []
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
