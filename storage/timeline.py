"""The draft timeline: promoted messages (by reaction or shortcut) and the bot's own entries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Message, Reaction, TimelineEntry


def _promoted_messages(incident_id: int, emojis: Iterable[str]) -> Any:
    """Messages of the incident on its timeline: not deleted, and pinned by reaction or shortcut."""
    pinned_by_reaction = exists().where(
        Reaction.team_id == Message.team_id,
        Reaction.channel_id == Message.channel_id,
        Reaction.message_ts == Message.ts,
        Reaction.present.is_(True),
        Reaction.emoji.in_(list(emojis)),
    )
    return select(Message).where(
        Message.incident_id == incident_id,
        Message.deleted.is_(False),
        or_(Message.promoted_by.is_not(None), pinned_by_reaction),
    )


async def is_on_timeline(session: AsyncSession, incident_id: int, emojis: Iterable[str], ts: str) -> bool:
    """Whether the message `ts` is on the incident's timeline now."""
    found = await session.scalar(_promoted_messages(incident_id, emojis).where(Message.ts == ts))
    return found is not None


async def promote_message(session: AsyncSession, team_id: str, channel_id: str, ts: str, user_id: str) -> None:
    """Put a stored message on the timeline by the shortcut; the first to do so is kept."""
    message = await session.scalar(
        select(Message).where(Message.team_id == team_id, Message.channel_id == channel_id, Message.ts == ts)
    )
    if message is not None and message.promoted_by is None:
        message.promoted_by = user_id


async def timeline_rows(
    session: AsyncSession, incident_id: int, emojis: Iterable[str]
) -> tuple[list[Message], list[TimelineEntry]]:
    """The incident's promoted messages and its lifecycle entries and notes, unsorted."""
    messages = list(await session.scalars(_promoted_messages(incident_id, emojis)))
    entries = list(await session.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == incident_id)))
    return messages, entries


async def add_timeline_entry(
    session: AsyncSession,
    *,
    team_id: str,
    incident_id: int,
    kind: str,
    occurred_at: datetime,
    user_id: str | None,
    text: str,
) -> TimelineEntry:
    """A lifecycle entry or a note, written when the caller's transaction commits."""
    entry = TimelineEntry(
        team_id=team_id, incident_id=incident_id, kind=kind, occurred_at=occurred_at, user_id=user_id, text=text
    )
    session.add(entry)
    return entry
