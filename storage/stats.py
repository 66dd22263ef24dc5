"""What `/postmortem stats` counts: a team's incidents over a period, with their follow-through."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, Incident, Postmortem


async def incidents_since(
    session: AsyncSession, team_id: str, since: datetime
) -> tuple[list[Incident], list[Postmortem], list[ActionItem]]:
    """Workspace `team_id`'s incidents declared since `since`, their post-mortems and action items."""
    incidents = list(
        await session.scalars(select(Incident).where(Incident.team_id == team_id, Incident.started_at >= since))
    )
    ids = [i.id for i in incidents]
    postmortems = list(await session.scalars(select(Postmortem).where(Postmortem.incident_id.in_(ids)))) if ids else []
    items = list(await session.scalars(select(ActionItem).where(ActionItem.incident_id.in_(ids)))) if ids else []
    return incidents, postmortems, items
