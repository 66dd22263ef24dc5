"""Tickets: an item's ticket, a channel's tracker, the work owed to trackers, pull cursors.

Ticket jobs are claimed like nudges (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite serialises
writers); the caller's transaction holds each claim and each mark.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CLAIMED, PENDING, SENT, ActionItem, TicketJob, TrackerChoice, TrackerCursor, TrackerNotice
from storage.upsert import on_conflict_insert

FAILED_JOB = "failed"


# --- a channel's tracker -------------------------------------------------------------------------


async def tracker_choice(session: AsyncSession, team_id: str, channel_id: str) -> TrackerChoice | None:
    return await session.get(TrackerChoice, (team_id, channel_id))


async def choose_tracker(
    session: AsyncSession, *, team_id: str, channel_id: str, tracker: str, project: str | None, by: str, at: datetime
) -> None:
    stmt = on_conflict_insert(session, TrackerChoice).values(
        team_id=team_id, channel_id=channel_id, tracker=tracker, project=project, chosen_by=by, chosen_at=at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id"],
        set_={"tracker": tracker, "project": project, "chosen_by": by, "chosen_at": at},
    )
    await session.execute(stmt)


# --- items and their tickets ---------------------------------------------------------------------


async def items_without_ticket(session: AsyncSession, incident_id: int) -> list[int]:
    return list(
        await session.scalars(
            select(ActionItem.id).where(
                ActionItem.incident_id == incident_id, ActionItem.ticket_key.is_(None), ActionItem.ticket_url.is_(None)
            )
        )
    )


async def item_by_ticket(session: AsyncSession, tracker: str, key_or_ref: str) -> ActionItem | None:
    """The item whose ticket is `key_or_ref` (its key, or the tracker's own id), locked."""
    return await session.scalar(
        select(ActionItem)
        .where(
            ActionItem.ticket_tracker == tracker,
            (ActionItem.ticket_key == key_or_ref) | (ActionItem.ticket_ref == key_or_ref),
        )
        .with_for_update()
    )


async def store_ticket(
    session: AsyncSession, item_id: int, *, tracker: str, key: str, ref: str, url: str, synced: dict[str, Any]
) -> None:
    await session.execute(
        update(ActionItem)
        .where(ActionItem.id == item_id)
        .values(ticket_tracker=tracker, ticket_key=key, ticket_ref=ref, ticket_url=url[:500], ticket_synced=synced)
    )


# --- jobs ------------------------------------------------------------------------------------


async def put_ticket_jobs(
    session: AsyncSession, *, team_id: str, item_ids: Iterable[int], kind: str, now: datetime
) -> None:
    """Owe `kind` for each item, due now. One already owed is asked again (its generation
    moves on, so a sweep holding it now does not mark the new ask done); one done or failed
    is owed again."""
    for item_id in item_ids:
        stmt = on_conflict_insert(session, TicketJob).values(
            team_id=team_id,
            item_id=item_id,
            kind=kind,
            status=PENDING,
            generation=0,
            not_before=now,
            attempts=0,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["item_id", "kind"],
            set_={
                "generation": TicketJob.generation + 1,
                # A claimed row stays claimed (its sweeper sees the new generation); any other is due now.
                "status": _case_keep_claimed(),
                "not_before": now,
                "attempts": 0,
            },
        )
        await session.execute(stmt)


def _case_keep_claimed() -> Any:
    from sqlalchemy import case

    return case((TicketJob.status == CLAIMED, CLAIMED), else_=PENDING)


async def claim_ticket_jobs(session: AsyncSession, now: datetime, limit: int, worker_id: str) -> list[TicketJob]:
    """Claim up to `limit` jobs due at `now`, oldest first; rows another sweeper holds are skipped."""
    rows = list(
        await session.scalars(
            select(TicketJob)
            .where(TicketJob.status == PENDING, TicketJob.not_before <= now)
            .order_by(TicketJob.not_before, TicketJob.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.status = CLAIMED
        row.claimed_by = worker_id
        row.claimed_at = now
        row.attempts += 1
    return rows


async def release_stale_ticket_claims(session: AsyncSession, claimed_before: datetime) -> int:
    """Claims older than the lease (their sweeper died): due again. Safe, because every job
    looks for what an earlier attempt did (the ticket's marker) before doing it again."""
    result = await session.execute(
        update(TicketJob)
        .where(TicketJob.status == CLAIMED, TicketJob.claimed_at < claimed_before)
        .values(status=PENDING, claimed_by=None, claimed_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def finish_ticket_job(session: AsyncSession, job_id: int, generation: int) -> None:
    """Done, unless it was asked again meanwhile (then it is due again at once)."""
    await session.execute(
        update(TicketJob).where(TicketJob.id == job_id, TicketJob.generation == generation).values(status=SENT)
    )
    await session.execute(
        update(TicketJob)
        .where(TicketJob.id == job_id, TicketJob.generation != generation)
        .values(status=PENDING, claimed_by=None, claimed_at=None)
    )


async def retry_ticket_job(session: AsyncSession, job_id: int, not_before: datetime, error: str) -> None:
    await session.execute(
        update(TicketJob)
        .where(TicketJob.id == job_id)
        .values(status=PENDING, not_before=not_before, claimed_by=None, claimed_at=None, last_error=error[:300])
    )


async def fail_ticket_job(session: AsyncSession, job_id: int, error: str) -> None:
    await session.execute(
        update(TicketJob).where(TicketJob.id == job_id).values(status=FAILED_JOB, last_error=error[:300])
    )


async def ticket_jobs_of(session: AsyncSession, item_ids: Iterable[int]) -> list[TicketJob]:
    return list(await session.scalars(select(TicketJob).where(TicketJob.item_id.in_(list(item_ids)))))


async def forget_ticket_jobs(session: AsyncSession, item_ids: Iterable[int]) -> None:
    await session.execute(delete(TicketJob).where(TicketJob.item_id.in_(list(item_ids))))


# --- pull cursors and notices ------------------------------------------------------------------


async def pull_cursor(session: AsyncSession, tracker: str) -> datetime | None:
    row = await session.get(TrackerCursor, tracker)
    return row.pulled_until if row else None


async def move_pull_cursor(session: AsyncSession, tracker: str, until: datetime) -> None:
    stmt = on_conflict_insert(session, TrackerCursor).values(tracker=tracker, pulled_until=until)
    stmt = stmt.on_conflict_do_update(index_elements=["tracker"], set_={"pulled_until": until})
    await session.execute(stmt)


async def first_notice(session: AsyncSession, key: str, told: str, at: datetime) -> bool:
    """Record that `told` hears about `key`; False when someone already did."""
    stmt = on_conflict_insert(session, TrackerNotice).values(key=key[:200], told=told, at=at)
    result = await session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_notice(session: AsyncSession, key: str) -> None:
    """The problem is gone: if it comes back, it is told again."""
    await session.execute(delete(TrackerNotice).where(TrackerNotice.key == key[:200]))
