"""Names for documents: people and channels as Slack last described them, kept in the database.

The bot hears who people are and what channels are called as it works (users.info answers,
conversations.info answers) and when Slack says they changed (`user_change`,
`channel_rename`, `group_rename`). It keeps what documents need, so a document names
people and its channel even when Slack cannot: `postmortem-bot export` with Slack
unreachable, or a person who has left the workspace. PeopleDirectory and ChannelAccess read
the database first and ask Slack only about whom it does not know.

What is heard in passing is written in the background: lookups happen in many places, some
while a transaction holds SQLite's only pooled connection, where a write of our own would
wait for that very connection. `flush` waits for those writes: callers that hold no
transaction (PeopleDirectory.learn and .names) and the bot when it closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from storage import directory as stored
from storage import intake
from storage.db import SessionFactory
from storage.models import KnownPerson

if TYPE_CHECKING:
    from bot.people import Person

log = logging.getLogger("postmortem_bot.directory")

MAX_NAME = 255  # the columns' width; Slack's own limits are far below it


def person_values(person: Person) -> dict[str, Any]:
    return {
        "user_id": person.id,
        "display_name": person.display_name[:MAX_NAME],
        "real_name": person.real_name[:MAX_NAME],
        "handle": person.handle[:MAX_NAME],
        "tz": person.tz[:64],
        "is_bot": person.is_bot,
        "deleted": person.deleted,
        "slack_updated": person.updated,
    }


class Directory:
    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    # --- heard in passing: kept in the background ----------------------------------------

    def remember_person(self, person: Person) -> None:
        values = person_values(person)
        self._write(lambda session: stored.remember_person(session, values), f"person {person.id}")

    def remember_channel(self, channel_id: str, name: str) -> None:
        if name:
            self._write(
                lambda session: stored.remember_channel(session, channel_id, name[:MAX_NAME]), f"channel {channel_id}"
            )

    def _write(self, write: Callable[[AsyncSession], Awaitable[None]], what: str) -> None:
        async def run() -> None:
            async with self.sessions.begin() as session:
                await write(session)

        task = asyncio.ensure_future(self._logged(run(), what))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception as exc:  # not kept now, kept the next time Slack is asked
            log.warning("could not keep %s for documents: %s", what, exc)

    async def flush(self) -> None:
        """Wait until everything heard so far is written."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # --- what Slack announces: written with the event's id, like every event -------------

    async def user_changed(self, team_id: str, event_id: str, person: Person) -> None:
        async with self.sessions.begin() as session:
            if await intake.claim_event(session, team_id, event_id, self.clock.now()):
                await stored.change_person(session, person_values(person))

    async def channel_renamed(self, team_id: str, event_id: str, channel_id: str, name: str) -> None:
        async with self.sessions.begin() as session:
            if await intake.claim_event(session, team_id, event_id, self.clock.now()) and name:
                await stored.rename_channel(session, channel_id, name[:MAX_NAME])

    # --- reading ------------------------------------------------------------------------

    async def people_named(self, user_ids: Iterable[str]) -> dict[str, str]:
        async with self.sessions() as session:
            return await stored.people_named(session, user_ids)

    async def kept_people(self, user_ids: Iterable[str]) -> list[KnownPerson]:
        """These people as last heard (users.info answers, user_change events), those kept."""
        async with self.sessions() as session:
            return await stored.known_people(session, user_ids)

    async def channels_named(self, channel_ids: Iterable[str]) -> dict[str, str]:
        async with self.sessions() as session:
            return await stored.channels_named(session, channel_ids)
