"""Intake: processed events, channel messages and timeline reactions, as events and
reconciliation write them. Every write here is safe to repeat: redelivery is normal."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_name, rows_affected
from storage.models import Message, ProcessedEvent, Reaction
from storage.upsert import on_conflict_insert_for

# The statements every event runs are built once per dialect and executed with parameters:
# building an upsert (its `excluded` columns above all) cost more CPU than running it.


@cache
def _claim_event_stmt(dialect: str) -> Any:
    return on_conflict_insert_for(dialect, ProcessedEvent.__table__).on_conflict_do_nothing(
        index_elements=["team_id", "event_id"]
    )


async def claim_event(session: AsyncSession, team_id: str, event_id: str, now: datetime) -> bool:
    """Record `event_id` as processed; False if it already was (a redelivery).

    Call it in the same transaction as the event's effects, so a crash leaves neither.
    """
    stmt = _claim_event_stmt(dialect_name(session))
    result = await session.execute(stmt, {"team_id": team_id, "event_id": event_id, "received_at": now})
    return rows_affected(result) == 1


async def claim_events(session: AsyncSession, events: Sequence[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    """Record many (team_id, event_id) as processed; the ones that were not before.

    Two statements for the lot. Safe because the inbox hands each event id to one applier at
    a time (SQLite: one writer; PostgreSQL: its row is locked while it is applied).
    """
    if not events:
        return set()
    seen: set[tuple[str, str]] = set()
    for chunk in range(0, len(events), 500):
        part = events[chunk : chunk + 500]
        found = await session.execute(
            select(ProcessedEvent.team_id, ProcessedEvent.event_id).where(
                tuple_(ProcessedEvent.team_id, ProcessedEvent.event_id).in_(part)
            )
        )
        seen.update((row.team_id, row.event_id) for row in found)
    new = [pair for pair in dict.fromkeys(events) if pair not in seen]
    if new:
        await session.execute(
            _claim_event_stmt(dialect_name(session)),
            [{"team_id": team_id, "event_id": event_id, "received_at": now} for team_id, event_id in new],
        )
    return set(new)


async def lock_channels(session: AsyncSession, channels: Iterable[tuple[str, str]]) -> None:
    """Hold, until the transaction ends, the right to write these (team, channel)s' messages.

    PostgreSQL replicas apply disjoint events that may touch the same messages (a post on one,
    its edit on the other); taking the channels' advisory locks first, in one order, makes
    them wait for each other instead of deadlocking. SQLite has one writer: nothing to do.
    """
    if dialect_name(session) != "postgresql":
        return
    for key in sorted({_lock_key(team_id, channel_id) for team_id, channel_id in channels}):
        await session.execute(_ADVISORY_LOCK, {"key": key})


_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def _lock_key(team_id: str, channel_id: str) -> int:
    """A stable signed 64-bit key for a channel (PostgreSQL's advisory lock space)."""
    digest = hashlib.blake2b(f"timeline:{team_id}:{channel_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def prune_processed_events(session: AsyncSession, before: datetime) -> int:
    """Forget event ids received before `before`; Slack stops retrying long before that."""
    result = await session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < before))
    return rows_affected(result)


async def is_event_processed(session: AsyncSession, team_id: str, event_id: str) -> bool:
    return await session.get(ProcessedEvent, (team_id, event_id)) is not None


async def message_exists(session: AsyncSession, team_id: str, channel_id: str, ts: str) -> bool:
    found = await session.scalar(
        select(Message.id).where(Message.team_id == team_id, Message.channel_id == channel_id, Message.ts == ts)
    )
    return found is not None


@cache
def _insert_message_stmt(dialect: str) -> Any:
    stmt = on_conflict_insert_for(dialect, Message.__table__)
    new = stmt.excluded
    # A placeholder may have been edited since it was made (its edit arrived first): the
    # message filling it in must not put the older text back.
    keep_edit = and_(Message.edited_ts.is_not(None), or_(new.edited_ts.is_(None), new.edited_ts <= Message.edited_ts))
    fill = {k: new[k] for k in ("user_id", "thread_ts", "file_names", "source")}
    fill |= {
        "text": case((keep_edit, Message.text), else_=new.text),
        "edited_ts": case((keep_edit, Message.edited_ts), else_=new.edited_ts),
        # The text as first posted: what fills the placeholder, when the placeholder was edited.
        "original_text": case((and_(keep_edit, new.edited_ts.is_(None)), new.text), else_=None),
    }
    return stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id", "ts"],
        set_=fill,
        where=and_(Message.source == "missing", new.source != "missing"),
    )


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert a message; a repeat is ignored, except that it fills in a 'missing' placeholder."""
    await insert_messages(session, [values])


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`insert_message` for many, in one statement (executed with every row, in order)."""
    if rows:
        await session.execute(_insert_message_stmt(dialect_name(session)), list(rows))


@cache
def _message_edit_stmt(dialect: str) -> Any:
    stmt = on_conflict_insert_for(dialect, Message.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id", "ts"],
        set_={
            "text": stmt.excluded.text,
            "edited_ts": stmt.excluded.edited_ts,
            # Keep the first text ever seen; later edits must not overwrite it.
            "original_text": func.coalesce(Message.original_text, Message.text),
            "file_names": stmt.excluded.file_names,
        },
        where=and_(
            Message.deleted.is_(False),
            or_(Message.edited_ts.is_(None), Message.edited_ts < stmt.excluded.edited_ts),
        ),
    )


async def apply_message_edit(session: AsyncSession, values: dict[str, Any]) -> None:
    """Apply an edit unless a newer one was applied already or the message was deleted.

    `values` carries the new text, `edited_ts`, and `original_text` (the text before this
    edit, used only when the message was never seen before).
    """
    await apply_message_edits(session, [values])


async def apply_message_edits(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`apply_message_edit` for many, in one statement (executed with every row, in order)."""
    if rows:
        await session.execute(_message_edit_stmt(dialect_name(session)), list(rows))


@cache
def _tombstone_stmt(dialect: str) -> Any:
    stmt = on_conflict_insert_for(dialect, Message.__table__)
    return stmt.on_conflict_do_update(index_elements=["team_id", "channel_id", "ts"], set_={"deleted": True})


async def mark_message_deleted(session: AsyncSession, values: dict[str, Any]) -> None:
    """Tombstone a message, inserting the tombstone if the delete overtook the message."""
    await mark_messages_deleted(session, [values])


async def mark_messages_deleted(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`mark_message_deleted` for many, in one statement."""
    if rows:
        await session.execute(_tombstone_stmt(dialect_name(session)), [{**row, "deleted": True} for row in rows])


async def set_reaction(
    session: AsyncSession,
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    user_id: str,
    emoji: str,
    present: bool,
    event_ts: str,
) -> None:
    """Record that `user_id`'s `emoji` on a message is `present` as of `event_ts`.

    A change older than the one stored is ignored, so concurrent add/remove processed out of
    order converge on the latest state, and a redelivered event changes nothing.
    """
    values = {
        "team_id": team_id,
        "channel_id": channel_id,
        "message_ts": message_ts,
        "user_id": user_id,
        "emoji": emoji,
        "present": present,
        "event_ts": event_ts,
    }
    await set_reactions(session, [values])


async def set_reactions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """`set_reaction` for many (dicts of its keyword arguments), in one statement, in order."""
    if rows:
        await session.execute(_reaction_stmt(dialect_name(session)), list(rows))


@cache
def _reaction_stmt(dialect: str) -> Any:
    stmt = on_conflict_insert_for(dialect, Reaction.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id", "message_ts", "user_id", "emoji"],
        set_={"present": stmt.excluded.present, "event_ts": stmt.excluded.event_ts},
        where=Reaction.event_ts < stmt.excluded.event_ts,
    )


async def stored_messages(
    session: AsyncSession, team_id: str, channel_id: str, ts_list: Iterable[str]
) -> dict[str, str | None]:
    """Of these messages, the ones stored: ts -> when their reactions were last read whole
    from Slack (reactions_read_ts, None if never)."""
    wanted = sorted(set(ts_list))
    found: dict[str, str | None] = {}
    for chunk in range(0, len(wanted), 500):
        rows = await session.execute(
            select(Message.ts, Message.reactions_read_ts).where(
                Message.team_id == team_id,
                Message.channel_id == channel_id,
                Message.ts.in_(wanted[chunk : chunk + 500]),
            )
        )
        found.update({row.ts: row.reactions_read_ts for row in rows})
    return found


async def mark_reactions_read(
    session: AsyncSession, team_id: str, channel_id: str, ts_list: list[str], read_ts: str
) -> None:
    """Record that the reactions of these messages were read whole at `read_ts`."""
    for chunk in range(0, len(ts_list), 500):
        await session.execute(
            update(Message)
            .where(
                Message.team_id == team_id,
                Message.channel_id == channel_id,
                Message.ts.in_(ts_list[chunk : chunk + 500]),
                or_(Message.reactions_read_ts.is_(None), Message.reactions_read_ts < read_ts),
            )
            .values(reactions_read_ts=read_ts)
        )


async def incident_messages(session: AsyncSession, incident_id: int) -> list[Message]:
    """Every message row of the incident, tombstones included."""
    return list(await session.scalars(select(Message).where(Message.incident_id == incident_id)))


async def channel_reactions(
    session: AsyncSession, team_id: str, channel_id: str, emojis: Iterable[str]
) -> list[Reaction]:
    """The latest known state of every timeline-emoji reaction in a channel."""
    return list(
        await session.scalars(
            select(Reaction).where(
                Reaction.team_id == team_id, Reaction.channel_id == channel_id, Reaction.emoji.in_(list(emojis))
            )
        )
    )
