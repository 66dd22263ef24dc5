"""One HTTP client per tracker: timeouts, and failures sorted into retry-later and fix-the-setup."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp

from bot.trackers.base import TicketGone, TrackerError, TrackerRefused, TrackerUnavailable

log = logging.getLogger("postmortem_bot.trackers")

TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (delta form), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TrackerHTTP:
    """Sends JSON, gives back JSON; raises TrackerError subclasses for everything else."""

    def __init__(self, name: str, headers: dict[str, str]) -> None:
        self.name = name
        self._headers = headers
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT, headers=self._headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self, method: str, url: str, *, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        """(status, parsed JSON or None, headers). 429 and 5xx, timeouts and refused
        connections raise TrackerUnavailable; the caller reads 4xx bodies."""
        try:
            async with self._client().request(
                method, url, json=body, params=params, headers={"Accept": "application/json"}
            ) as response:
                text = await response.text()
                status, headers = response.status, response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TrackerUnavailable(f"{self.name} did not answer ({exc.__class__.__name__})") from exc
        if status == 429:
            raise TrackerUnavailable(f"{self.name} is rate limiting the bot", retry_after=retry_after(headers))
        if status >= 500:
            raise TrackerUnavailable(f"{self.name} answered HTTP {status}", retry_after=retry_after(headers))
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        return status, data, headers


def refusal(tracker: str, status: int, detail: str, what_to_fix: str) -> TrackerError:
    """A 4xx as an error a person can act on."""
    if status == 401:
        return TrackerRefused(f"{tracker} refused the bot's credentials (HTTP 401{detail}): {what_to_fix}")
    if status == 403:
        return TrackerRefused(f"{tracker} says the bot may not do this (HTTP 403{detail}): {what_to_fix}")
    if status == 404:
        return TicketGone(f"{tracker} has no such ticket (HTTP 404{detail})")
    return TrackerRefused(f"{tracker} refused the request (HTTP {status}{detail})")
