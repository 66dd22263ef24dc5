"""Nudges: the schedule of what the bot owes people, one row per (kind, subject, slot).

A sweep claims due rows atomically (FOR UPDATE SKIP LOCKED on PostgreSQL, so replicas never
claim the same row; SQLite serialises writers), sends, then marks them sent. The caller's
transaction holds the claim, the mark and the next plan together.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CANCELLED, CLAIMED, FAILED, PENDING, SENT, Nudge
from storage.upsert import on_conflict_insert


async def put_nudge(
    session: AsyncSession,
    *,
    team_id: str,
    kind: str,
    subject: str,
    slot: str,
    recipient: str,
    not_before: datetime,
    now: datetime,
) -> None:
    """Insert a pending nudge; a cancelled one with the same key comes back; a sent one stays sent."""
    stmt = on_conflict_insert(session, Nudge).values(
        team_id=team_id,
        kind=kind,
        subject=subject,
        slot=slot,
        recipient=recipient,
        not_before=not_before,
        status=PENDING,
        attempts=0,
        created_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "subject", "slot"],
        set_={"status": PENDING, "not_before": stmt.excluded.not_before, "recipient": stmt.excluded.recipient},
        where=Nudge.status == CANCELLED,
    )
    await session.execute(stmt)


async def put_nudges(session: AsyncSession, nudges: list[dict[str, Any]], *, now: datetime) -> None:
    """`put_nudge` for many in one executemany: each of `nudges` has team_id, kind, subject,
    slot, recipient and not_before."""
    if not nudges:
        return
    stmt = on_conflict_insert(session, Nudge)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "subject", "slot"],
        set_={"status": PENDING, "not_before": stmt.excluded.not_before, "recipient": stmt.excluded.recipient},
        where=Nudge.status == CANCELLED,
    )
    await session.execute(stmt, [dict(n, status=PENDING, attempts=0, created_at=now) for n in nudges])


async def cancel_pending_nudges(session: AsyncSession, subject: str, kinds: Iterable[str]) -> None:
    """Cancel what is still to be sent of these kinds about `subject`."""
    await session.execute(
        update(Nudge)
        .where(Nudge.subject == subject, Nudge.kind.in_(list(kinds)), Nudge.status == PENDING)
        .values(status=CANCELLED)
    )


async def cancel_pending_of_subjects(
    session: AsyncSession, subjects: list[str], kinds: Iterable[str] | None = None
) -> None:
    """Cancel what is still to be sent (of `kinds`, else of any kind) about any of `subjects`."""
    stmt = update(Nudge).where(Nudge.subject.in_(subjects), Nudge.status == PENDING)
    if kinds is not None:
        stmt = stmt.where(Nudge.kind.in_(list(kinds)))
    await session.execute(stmt.values(status=CANCELLED))


async def forget_unclaimed_nudges(session: AsyncSession, subject: str, kinds: Iterable[str]) -> None:
    """Delete every nudge of these kinds about `subject` but one a sweep is sending now."""
    await session.execute(
        delete(Nudge).where(
            Nudge.subject == subject,
            Nudge.kind.in_(list(kinds)),
            Nudge.status.in_((SENT, CANCELLED, FAILED, PENDING)),
        )
    )


async def last_sent_nudge(session: AsyncSession, subject: str, kind: str) -> Nudge | None:
    return await session.scalar(
        select(Nudge)
        .where(Nudge.subject == subject, Nudge.kind == kind, Nudge.status == SENT)
        .order_by(Nudge.sent_at.desc(), Nudge.id.desc())
        .limit(1)
    )


async def pending_subjects_due_before(session: AsyncSession, kind: str, before: datetime) -> list[str]:
    """Subjects with a pending nudge of `kind` that was due before `before`."""
    return list(
        await session.scalars(
            select(Nudge.subject).where(Nudge.status == PENDING, Nudge.kind == kind, Nudge.not_before < before)
        )
    )


async def next_pending_nudge(session: AsyncSession) -> Nudge | None:
    """The pending nudge due first."""
    return await session.scalar(select(Nudge).where(Nudge.status == PENDING).order_by(Nudge.not_before, Nudge.id))


async def claim_due_nudges(session: AsyncSession, now: datetime, limit: int, worker_id: str) -> list[Nudge]:
    """Claim up to `limit` nudges due at `now` for `worker_id`, first due first, in one
    statement; rows another sweeper holds are skipped, not waited for (the subquery's FOR
    UPDATE SKIP LOCKED on PostgreSQL). The claim stands when the transaction commits."""
    due = (
        select(Nudge.id)
        .where(Nudge.status == PENDING, Nudge.not_before <= now)
        .order_by(Nudge.not_before, Nudge.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    rows = list(
        await session.scalars(
            update(Nudge)
            # By id alone, so the rows are found by key (a status test here would have SQLite
            # walk every pending row). PostgreSQL re-checks the subquery's WHERE on the newest
            # version of each row it locks, so a row another sweeper claimed is not taken.
            .where(Nudge.id.in_(due))
            .values(status=CLAIMED, claimed_by=worker_id, claimed_at=now, attempts=Nudge.attempts + 1)
            .returning(Nudge)
            .execution_options(synchronize_session=False)
        )
    )
    return sorted(rows, key=lambda row: (row.not_before, row.id))


async def count_due_unsent(session: AsyncSession, now: datetime) -> int:
    """Nudges due at `now` and not sent yet (pending, or claimed and not marked): an index
    range over the due rows only, whatever the schedule holds."""
    return int(
        await session.scalar(
            select(func.count()).select_from(Nudge).where(Nudge.status.in_((PENDING, CLAIMED)), Nudge.not_before <= now)
        )
        or 0
    )


async def take_over_claims(
    session: AsyncSession, claimed_before: datetime, now: datetime, worker_id: str
) -> list[tuple[Nudge, datetime]]:
    """Take over claims made before `claimed_before` (their sweeper is taken to have
    crashed) for `worker_id` at `now`; each with the time it was claimed before."""
    rows = list(
        await session.scalars(
            select(Nudge)
            .where(Nudge.status == CLAIMED, Nudge.claimed_at < claimed_before)
            .with_for_update(skip_locked=True)
        )
    )
    # The WHERE above compared claimed_at, so it is set on every row.
    claimed = [(row, row.claimed_at) for row in rows if row.claimed_at is not None]
    for row in rows:
        row.claimed_by = worker_id
        row.claimed_at = now
    return claimed


async def mark_nudge_sent(session: AsyncSession, nudge_id: int, *, at: datetime, channel: str, ts: str) -> None:
    """Slack has the nudge's message: `channel`, `ts`."""
    await session.execute(
        update(Nudge)
        .where(Nudge.id == nudge_id)
        .values(status=SENT, sent_at=at, message_channel=channel, message_ts=ts, last_error=None)
    )


async def mark_nudges_sent(session: AsyncSession, sent: list[dict[str, Any]]) -> None:
    """Slack has these nudges' messages: each of `sent` is {"id", "at", "channel", "ts"};
    one executemany, whatever their number."""
    if not sent:
        return
    await session.execute(
        update(Nudge.__table__)  # type: ignore[arg-type]
        .where(Nudge.__table__.c.id == bindparam("nudge_id"))
        .values(
            status=SENT,
            sent_at=bindparam("at"),
            message_channel=bindparam("channel"),
            message_ts=bindparam("ts"),
            last_error=None,
        ),
        [{"nudge_id": s["id"], "at": s["at"], "channel": s["channel"], "ts": s["ts"]} for s in sent],
    )


async def release_nudge(session: AsyncSession, nudge_id: int, not_before: datetime, error: str) -> None:
    """Give a claim back, to be tried again from `not_before`."""
    await session.execute(
        update(Nudge)
        .where(Nudge.id == nudge_id)
        .values(status=PENDING, not_before=not_before, claimed_by=None, claimed_at=None, last_error=error[:200])
    )


async def set_nudge_status(session: AsyncSession, nudge_id: int, status: str) -> None:
    await session.execute(update(Nudge).where(Nudge.id == nudge_id).values(status=status))


async def mark_nudge_failed(session: AsyncSession, nudge_id: int, error: str) -> None:
    """Undeliverable: Slack's reason is kept."""
    await session.execute(update(Nudge).where(Nudge.id == nudge_id).values(status=FAILED, last_error=error[:200]))
