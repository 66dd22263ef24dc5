"""The event inbox: deliveries stored in batches before their acknowledgement, and taken
back in arrival order to be applied. Several replicas may share it (SKIP LOCKED)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_name
from storage.models import InboxEvent
from storage.upsert import on_conflict_insert_for


@cache
def _store_stmt(dialect: str) -> Any:
    return on_conflict_insert_for(dialect, InboxEvent.__table__).on_conflict_do_nothing(
        index_elements=["team_id", "event_id"]
    )


async def store_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert deliveries (team_id, event_id, received_at, body) in one statement; a delivery
    already in the inbox (a redelivery) is ignored."""
    if rows:
        full = [{"attempts": 0, "failed": False, "last_error": None, **row} for row in rows]
        await session.execute(_store_stmt(dialect_name(session)), full)


async def take_deliveries(session: AsyncSession, limit: int) -> list[InboxEvent]:
    """The oldest deliveries not set aside, locked for this transaction. On PostgreSQL another
    replica skips them and takes the next; SQLite has one writer at a time anyway."""
    stmt = select(InboxEvent).where(InboxEvent.failed.is_(False)).order_by(InboxEvent.id).limit(limit)
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(await session.scalars(stmt))


async def forget_deliveries(session: AsyncSession, ids: Sequence[int]) -> None:
    """Remove applied deliveries (their event ids stay in processed_events)."""
    if ids:
        await session.execute(delete(InboxEvent).where(InboxEvent.id.in_(list(ids))))


async def note_failure(session: AsyncSession, delivery_id: int, error: str, give_up_after: int) -> bool:
    """Count a failed attempt; after `give_up_after` the delivery is set aside. True if it was."""
    row = await session.get(InboxEvent, delivery_id, with_for_update=dialect_name(session) == "postgresql")
    if row is None:
        return False
    row.attempts += 1
    row.last_error = error[:200]
    row.failed = row.attempts >= give_up_after
    return row.failed


async def inbox_backlog(session: AsyncSession) -> int:
    """Deliveries waiting to be applied."""
    return int(
        await session.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.failed.is_(False))) or 0
    )


async def oldest_waiting(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(InboxEvent.received_at)).where(InboxEvent.failed.is_(False)))
