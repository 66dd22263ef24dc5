"""People and channels as Slack last described them: what documents need to name them.

Writes are idempotent and ordered by Slack's own stamp of a profile (`updated`), so an
answer or event that arrives late cannot undo a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rows_affected
from storage.models import KnownChannel, KnownPerson
from storage.upsert import on_conflict_insert

PERSON_FIELDS = ("display_name", "real_name", "handle", "tz", "is_bot", "deleted", "slack_updated")
NAME_FIELDS = ("display_name", "real_name", "handle")


def _fields(values: dict[str, Any]) -> list[str]:
    """The fields a refresh writes: a profile with no name at all (an erased account) leaves
    the names kept, so a person who left is still named by what was last known."""
    keep_names = not any(values.get(name) for name in NAME_FIELDS)
    return [f for f in PERSON_FIELDS if f in values and not (keep_names and f in NAME_FIELDS)]


def _not_older(stamp: Any) -> Any:
    """The kept row is no newer than `stamp` (either may be unknown: then the newer write wins)."""
    return or_(KnownPerson.slack_updated.is_(None), stamp.is_(None), KnownPerson.slack_updated <= stamp)


async def remember_person(session: AsyncSession, values: dict[str, Any]) -> None:
    """Keep a person as a users.info answer describes them (`values`: user_id and PERSON_FIELDS)."""
    stmt = on_conflict_insert(session, KnownPerson).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["user_id"],
        set_={f: stmt.excluded[f] for f in _fields(values)},
        where=_not_older(stmt.excluded.slack_updated),
    )
    await session.execute(stmt)


async def change_person(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Apply a user_change to a person already kept; True if a row changed.

    Slack sends user_change for everyone in the workspace: only people the bot has met (and
    so may name in a document) are kept.
    """
    stamp = values.get("slack_updated")
    stmt = (
        update(KnownPerson)
        .where(KnownPerson.user_id == values["user_id"])
        .values({f: values[f] for f in _fields(values)})
    )
    if stamp is not None:
        stmt = stmt.where(or_(KnownPerson.slack_updated.is_(None), KnownPerson.slack_updated <= stamp))
    result = await session.execute(stmt)
    return rows_affected(result) > 0


async def people_named(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, str]:
    """How documents name these people, for those kept: id -> name."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await session.scalars(select(KnownPerson).where(KnownPerson.user_id.in_(ids)))
    return {row.user_id: row.label for row in rows}


async def remember_channel(session: AsyncSession, channel_id: str, name: str) -> None:
    stmt = on_conflict_insert(session, KnownChannel).values(channel_id=channel_id, name=name)
    stmt = stmt.on_conflict_do_update(index_elements=["channel_id"], set_={"name": stmt.excluded.name})
    await session.execute(stmt)


async def rename_channel(session: AsyncSession, channel_id: str, name: str) -> bool:
    """Apply a rename to a channel already kept (Slack announces renames of every channel)."""
    result = await session.execute(update(KnownChannel).where(KnownChannel.channel_id == channel_id).values(name=name))
    return rows_affected(result) > 0


async def channels_named(session: AsyncSession, channel_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(set(channel_ids))
    if not ids:
        return {}
    rows = await session.scalars(select(KnownChannel).where(KnownChannel.channel_id.in_(ids)))
    return {row.channel_id: row.name for row in rows}


async def known_names(session: AsyncSession) -> list[str]:
    """Every name of every person kept (display, real, handle), bots aside: who the quality
    checks take for a person when a post-mortem is linted without Slack."""
    rows = await session.execute(
        select(KnownPerson.display_name, KnownPerson.real_name, KnownPerson.handle).where(KnownPerson.is_bot.is_(False))
    )
    return sorted({name for row in rows for name in row if name})


async def known_people(session: AsyncSession, user_ids: Iterable[str]) -> list[KnownPerson]:
    """These people as kept (those the bot has met)."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    return list(await session.scalars(select(KnownPerson).where(KnownPerson.user_id.in_(ids))))
