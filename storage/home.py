"""What App Home and the repeat finder read: a person's open items, the incidents they command
that still owe something, and earlier incidents with their open items."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ActionItem, Incident, KnownChannel, Postmortem
from storage.stats import OPEN_STATUSES


async def open_items_of(session: AsyncSession, team_id: str, owner_id: str) -> list[tuple[ActionItem, Incident]]:
    """`owner_id`'s open and in-progress items, soonest due first."""
    rows = await session.execute(
        select(ActionItem, Incident)
        .join(Incident, Incident.id == ActionItem.incident_id)
        .where(ActionItem.team_id == team_id, ActionItem.owner_id == owner_id, ActionItem.status.in_(OPEN_STATUSES))
        .order_by(ActionItem.due, ActionItem.id)
    )
    return [(item, incident) for item, incident in rows.all()]


async def incidents_owing(
    session: AsyncSession, team_id: str, commander_id: str, limit: int = 50
) -> list[tuple[Incident, Postmortem | None]]:
    """Incidents `commander_id` commands that still owe their post-mortem, its review meeting
    or its publication (active ones too: they owe a resolution), newest first."""
    rows = await session.execute(
        select(Incident, Postmortem)
        .outerjoin(Postmortem, Postmortem.incident_id == Incident.id)
        .where(
            Incident.team_id == team_id,
            Incident.commander_id == commander_id,
            or_(Postmortem.id.is_(None), Postmortem.published_at.is_(None)),
        )
        .order_by(Incident.started_at.desc(), Incident.id.desc())
        .limit(limit)
    )
    return [(incident, postmortem) for incident, postmortem in rows.all()]


async def earlier_incidents(
    session: AsyncSession, team_id: str, before_id: int, limit: int = 500
) -> list[tuple[Incident, Postmortem | None, str | None]]:
    """The team's incidents declared before incident `before_id`, newest first, each with its
    post-mortem (its draft holds the cause) and its channel's name when known."""
    rows = await session.execute(
        select(Incident, Postmortem, KnownChannel.name)
        .outerjoin(Postmortem, Postmortem.incident_id == Incident.id)
        .outerjoin(KnownChannel, KnownChannel.channel_id == Incident.channel_id)
        .where(Incident.team_id == team_id, Incident.id < before_id)
        .order_by(Incident.id.desc())
        .limit(limit)
    )
    return [(incident, postmortem, name) for incident, postmortem, name in rows.all()]


async def open_items_of_incidents(session: AsyncSession, incident_ids: list[int]) -> list[tuple[ActionItem, Incident]]:
    """The open and in-progress items of these incidents, soonest due first."""
    if not incident_ids:
        return []
    rows = await session.execute(
        select(ActionItem, Incident)
        .join(Incident, Incident.id == ActionItem.incident_id)
        .where(ActionItem.incident_id.in_(incident_ids), ActionItem.status.in_(OPEN_STATUSES))
        .order_by(ActionItem.due, ActionItem.id)
    )
    return [(item, incident) for item, incident in rows.all()]
