"""Post-mortems: the working draft of an incident's post-mortem, and its revisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Postmortem, PostmortemRevision


async def get_postmortem(session: AsyncSession, incident_id: int, *, lock: bool = False) -> Postmortem | None:
    """The incident's post-mortem; with `lock`, held FOR UPDATE until the transaction ends."""
    stmt = select(Postmortem).where(Postmortem.incident_id == incident_id)
    return await session.scalar(stmt.with_for_update() if lock else stmt)


async def postmortem_status(session: AsyncSession, incident_id: int) -> str | None:
    """draft, in_review or published; None before anyone opened the form."""
    return await session.scalar(select(Postmortem.status).where(Postmortem.incident_id == incident_id))


async def removed_item_ids_of(session: AsyncSession, incident_id: int) -> list[int]:
    """Stored action items removed in the form, to be deleted by the next submission."""
    removed = await session.scalar(select(Postmortem.removed_item_ids).where(Postmortem.incident_id == incident_id))
    return removed or []


async def summary_ts_of(session: AsyncSession, incident_id: int) -> str | None:
    """The ts of the post-mortem's latest summary in the incident channel, if shared."""
    return await session.scalar(select(Postmortem.summary_ts).where(Postmortem.incident_id == incident_id))


async def create_postmortem(
    session: AsyncSession, *, team_id: str, incident_id: int, status: str, draft: dict[str, Any], updated_at: datetime
) -> Postmortem:
    """A new post-mortem with its first draft, written when the caller's transaction commits."""
    postmortem = Postmortem(
        team_id=team_id,
        incident_id=incident_id,
        status=status,
        draft=draft,
        view_revision=0,
        removed_item_ids=[],
        updated_at=updated_at,
    )
    session.add(postmortem)
    return postmortem


async def add_revision(
    session: AsyncSession,
    *,
    team_id: str,
    postmortem_id: int,
    author_id: str,
    content: dict[str, Any],
    created_at: datetime,
) -> int:
    """Keep a submission whole as the post-mortem's next revision; returns its number."""
    number = (
        await session.scalar(  # coalesce(max, 0): never NULL
            select(func.coalesce(func.max(PostmortemRevision.number), 0)).where(
                PostmortemRevision.postmortem_id == postmortem_id
            )
        )
        or 0
    ) + 1
    session.add(
        PostmortemRevision(
            team_id=team_id,
            postmortem_id=postmortem_id,
            number=number,
            author_id=author_id,
            content=content,
            created_at=created_at,
        )
    )
    return number


async def revision_authors(session: AsyncSession, postmortem_id: int) -> list[str]:
    """Everyone who submitted a revision, in the order they first did."""
    return list(
        await session.scalars(
            select(PostmortemRevision.author_id)
            .where(PostmortemRevision.postmortem_id == postmortem_id)
            .group_by(PostmortemRevision.author_id)
            .order_by(func.min(PostmortemRevision.number))
        )
    )
