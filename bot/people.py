"""Who people are, as Slack says: time zone, display name, bot or not. Cached briefly.

Several rules need it before an ack (is this action-item owner a bot?), so lookups are
cached and bounded: a slow Slack costs a skipped check, never a missed 3-second ack.

Every answer is also kept in the database (bot.directory), and documents name people from
there first: Slack is asked only about someone the database does not know yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import error_code

if TYPE_CHECKING:
    from bot.directory import Directory

log = logging.getLogger("postmortem_bot.people")

CACHE_SECONDS = 600
LOOKUP_CONCURRENCY = 8  # users.info calls in flight at once for a batch (Tier 4: ~100 a minute)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    real_name: str = ""
    tz: str = "UTC"
    is_bot: bool = False
    deleted: bool = False
    known: bool = True  # False when Slack could not tell us (the fields are defaults)
    display_name: str = ""
    handle: str = ""  # Slack's `name`
    updated: int | None = None  # Slack's stamp of the profile: a newer one wins

    @classmethod
    def from_slack(cls, user_id: str, user: Mapping[str, Any]) -> Person:
        """A users.info `user` object (user_change carries the same)."""
        raw_profile = user.get("profile")
        profile: Mapping[str, Any] = raw_profile if isinstance(raw_profile, Mapping) else {}
        display = _text(profile.get("display_name"))
        handle = _text(user.get("name"))
        updated = user.get("updated")
        return cls(
            id=user_id,
            name=display or handle or user_id,
            real_name=_text(user.get("real_name")) or _text(profile.get("real_name")),
            tz=_text(user.get("tz")) or "UTC",
            is_bot=bool(user.get("is_bot")) or user_id == "USLACKBOT",
            deleted=bool(user.get("deleted")),
            display_name=display,
            handle=handle,
            updated=updated if isinstance(updated, int) and not isinstance(updated, bool) else None,
        )

    @property
    def label(self) -> str:
        """How a document names them: display name, else full name, else handle."""
        return self.display_name or self.real_name or self.handle or self.id

    def not_a_person_reason(self) -> str | None:
        """Why this account cannot own an action item, or None if it can."""
        if not self.known:
            return None  # benefit of the doubt: Slack could not say
        if self.is_bot:
            return "is a bot"
        if self.deleted:
            return "is deactivated"
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class PeopleDirectory:
    def __init__(self, client: AsyncWebClient, directory: Directory) -> None:
        self.client = client
        self.directory = directory
        self._cache: dict[str, tuple[float, Person]] = {}
        self._learned: set[str] = set()  # ids this process made sure the database knows

    async def get(self, user_id: str) -> Person:
        cached = self._cache.get(user_id)
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("users.info failed for %s: %s", user_id, error_code(exc))
            return Person(id=user_id, name=user_id, known=False)
        user = response.get("user")
        person = Person.from_slack(user_id, user if isinstance(user, Mapping) else {})
        self._cache[user_id] = (time.monotonic(), person)
        self.directory.remember_person(person)
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

    async def for_sending(self, user_ids: Iterable[str]) -> dict[str, Person]:
        """Who these people are, for a batch of messages: time zone, bot, deactivated.

        Slack's per-method limit (users.info is Tier 4, about 100 a minute) rules out asking
        about each of a thousand recipients, so this reads what this process heard lately,
        then what the database keeps (every users.info answer, and every `user_change`,
        which Slack sends when someone is deactivated or moves time zone), in one query,
        and asks Slack, LOOKUP_CONCURRENCY at a time, only about people neither knows.
        """
        ids = {uid for uid in user_ids if uid}
        now = time.monotonic()
        found: dict[str, Person] = {}
        for uid in ids:
            cached = self._cache.get(uid)
            if cached and now - cached[0] < CACHE_SECONDS:
                found[uid] = cached[1]
        missing = ids - found.keys()
        if missing:
            for row in await self.directory.kept_people(missing):
                found[row.user_id] = Person(
                    id=row.user_id,
                    name=row.display_name or row.handle or row.user_id,
                    real_name=row.real_name,
                    tz=row.tz,
                    is_bot=row.is_bot,
                    deleted=row.deleted,
                    display_name=row.display_name,
                    handle=row.handle,
                    updated=row.slack_updated,
                )
        unknown = sorted(ids - found.keys())
        if unknown:
            gate = asyncio.Semaphore(LOOKUP_CONCURRENCY)

            async def ask(uid: str) -> Person:
                async with gate:
                    return await self.get(uid)

            found.update(zip(unknown, await asyncio.gather(*(ask(uid) for uid in unknown)), strict=True))
        return found

    async def refresh(self, user_id: str) -> Person:
        """Ask Slack now, whatever is cached: when a message to them was refused."""
        self._cache.pop(user_id, None)
        return await self.get(user_id)

    async def names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """How documents name these people: as the database knows them, else as Slack says
        (and then kept). Someone neither knows is left out: their id stands in."""
        ids = {uid for uid in user_ids if uid}
        names = await self.directory.people_named(ids)
        missing = ids - names.keys()
        if missing:
            people = await self.many(missing, timeout=10)
            names.update({uid: p.label for uid, p in people.items() if p.known})
            await self.directory.flush()
        return names

    async def learn(self, user_ids: Iterable[str | None]) -> None:
        """Make sure the database can name these people; never raises.

        Called when someone enters an incident's document (the commander, a pinned
        message's author, a note's author), so the document names them even if Slack is
        unreachable when it is rendered. Only people this process has not checked yet cost
        anything: a read of the database, and users.info for whom it does not know. Call it
        with no transaction open (users.info answers are written in their own).
        """
        new = {uid for uid in user_ids if uid and uid not in self._learned}
        if not new:
            return
        try:
            known = await self.directory.people_named(new)
            self._learned |= known.keys()
            for uid in sorted(new - known.keys()):
                if (await self.get(uid)).known:
                    self._learned.add(uid)  # else Slack could not say: ask again next time
            await self.directory.flush()
        except Exception as exc:  # naming is a nicety: never fail the caller's work over it
            log.warning("could not learn who %s are: %s", ", ".join(sorted(new)), exc)

    async def user_changed(self, team_id: str, event_id: str, user: Mapping[str, Any]) -> None:
        """A `user_change` event: forget the cached profile, refresh the kept one."""
        user_id = user.get("id")
        if not isinstance(user_id, str):
            return
        self._cache.pop(user_id, None)
        await self.directory.user_changed(team_id, event_id, Person.from_slack(user_id, user))
