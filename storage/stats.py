"""What `/postmortem stats`, the quarterly review and App Home count: a team's incidents over
a period with their follow-through, the items past due, and the teams there are."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, Incident, Postmortem

OPEN_STATUSES = ("open", "in_progress")


async def incidents_since(
    session: AsyncSession, team_id: str, since: datetime, until: datetime | None = None
) -> tuple[list[Incident], list[Postmortem], list[ActionItem]]:
    """Workspace `team_id`'s incidents declared in [since, until), their post-mortems and action items."""
    stmt = select(Incident).where(Incident.team_id == team_id, Incident.started_at >= since)
    if until is not None:
        stmt = stmt.where(Incident.started_at < until)
    incidents = list(await session.scalars(stmt.order_by(Incident.started_at, Incident.id)))
    ids = [i.id for i in incidents]
    postmortems = list(await session.scalars(select(Postmortem).where(Postmortem.incident_id.in_(ids)))) if ids else []
    items = list(await session.scalars(select(ActionItem).where(ActionItem.incident_id.in_(ids)))) if ids else []
    return incidents, postmortems, items


async def team_ids(session: AsyncSession) -> list[str]:
    """Every workspace that has declared an incident (one, for a bot installed once)."""
    return list(await session.scalars(select(Incident.team_id).distinct().order_by(Incident.team_id)))


async def open_items_past_due(
    session: AsyncSession, team_id: str, today: date, limit: int = 200
) -> list[tuple[ActionItem, Incident]]:
    """The graveyard: the team's items still open after their due date, oldest due first."""
    rows = await session.execute(
        select(ActionItem, Incident)
        .join(Incident, Incident.id == ActionItem.incident_id)
        .where(ActionItem.team_id == team_id, ActionItem.status.in_(OPEN_STATUSES), ActionItem.due < today)
        .order_by(ActionItem.due, ActionItem.id)
        .limit(limit)
    )
    return [(item, incident) for item, incident in rows.all()]


async def open_item_counts(session: AsyncSession, team_id: str, today: date) -> tuple[int, int]:
    """(open, of which past due) action items of the whole team, whenever their incident was."""
    open_count, overdue = (
        await session.execute(
            select(
                func.count(ActionItem.id),
                func.count(ActionItem.id).filter(ActionItem.due < today),
            ).where(ActionItem.team_id == team_id, ActionItem.status.in_(OPEN_STATUSES))
        )
    ).one()
    return int(open_count), int(overdue)
