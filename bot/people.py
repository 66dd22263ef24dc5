"""Who people are, as Slack says: time zone, display name, bot or not. Cached briefly.

Several rules need it before an ack (is this action-item owner a bot?), so lookups are
cached and bounded: a slow Slack costs a skipped check, never a missed 3-second ack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import error_code

log = logging.getLogger("postmortem_bot.people")

CACHE_SECONDS = 600


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    real_name: str = ""
    tz: str = "UTC"
    is_bot: bool = False
    deleted: bool = False
    known: bool = True  # False when Slack could not tell us (the fields are defaults)

    def not_a_person_reason(self) -> str | None:
        """Why this account cannot own an action item, or None if it can."""
        if not self.known:
            return None  # benefit of the doubt: Slack could not say
        if self.is_bot:
            return "is a bot"
        if self.deleted:
            return "is deactivated"
        return None


class PeopleDirectory:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._cache: dict[str, tuple[float, Person]] = {}

    async def get(self, user_id: str) -> Person:
        cached = self._cache.get(user_id)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, error_code(exc))
            return Person(id=user_id, name=user_id, known=False)
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        person = Person(
            id=user_id,
            name=profile.get("display_name") or user.get("name") or user_id,
            real_name=user.get("real_name") or profile.get("real_name") or "",
            tz=user.get("tz") or "UTC",
            is_bot=bool(user.get("is_bot")) or user_id == "USLACKBOT",
            deleted=bool(user.get("deleted")),
        )
        self._cache[user_id] = (time.monotonic(), person)
        return person

    async def many(self, user_ids: Iterable[str], timeout: float | None = None) -> dict[str, Person]:
        """Look up several people at once; past `timeout` the rest come back unknown."""
        ids = sorted(set(user_ids))
        tasks = {uid: asyncio.ensure_future(self.get(uid)) for uid in ids}
        if not tasks:
            return {}
        done, pending = await asyncio.wait(tasks.values(), timeout=timeout)
        for task in pending:
            task.cancel()
        result = {}
        for uid, task in tasks.items():
            result[uid] = task.result() if task in done and not task.cancelled() else Person(uid, uid, known=False)
        if pending:
            log.warning("users.info slower than %ss for %d people; their checks are skipped", timeout, len(pending))
        return result

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names for documents; an unknown id stays an id."""
        people = await self.many(user_ids, timeout=10)
        return {uid: p.name for uid, p in people.items() if p.known}
