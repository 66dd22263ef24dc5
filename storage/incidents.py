"""Incidents: which one a channel has, by id or by state; declaring one; its card."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ACTIVE, CAPTURING_STATUSES, Incident, TimelineEntry


async def get_incident(session: AsyncSession, incident_id: int, *, lock: bool = False) -> Incident | None:
    """The incident `incident_id`; with `lock`, held FOR UPDATE until the transaction ends."""
    if lock:
        return await session.get(Incident, incident_id, with_for_update=True)
    return await session.get(Incident, incident_id)


async def incidents_by_id(session: AsyncSession, incident_ids: Iterable[int]) -> dict[int, Incident]:
    """These incidents (those that exist), by id."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    return {i.id: i for i in await session.scalars(select(Incident).where(Incident.id.in_(ids)))}


async def team_incident(session: AsyncSession, team_id: str, incident_id: int) -> Incident | None:
    """The incident `incident_id` if it is workspace `team_id`'s: ids come from payloads."""
    return await session.scalar(select(Incident).where(Incident.id == incident_id, Incident.team_id == team_id))


async def active_incident(session: AsyncSession, team_id: str, channel_id: str) -> Incident | None:
    return await session.scalar(
        select(Incident).where(
            Incident.team_id == team_id, Incident.channel_id == channel_id, Incident.status == ACTIVE
        )
    )


# Every event runs it: built once, executed with parameters.
CAPTURING_INCIDENT = (
    select(Incident)
    .where(
        Incident.team_id == bindparam("team_id"),
        Incident.channel_id == bindparam("channel_id"),
        Incident.status.in_(CAPTURING_STATUSES),
    )
    .order_by(Incident.id.desc())
    .limit(1)
)


async def capturing_incident(session: AsyncSession, team_id: str, channel_id: str) -> Incident | None:
    """The incident a channel's messages belong to now: its latest one still capturing."""
    return await session.scalar(CAPTURING_INCIDENT, {"team_id": team_id, "channel_id": channel_id})


async def latest_incident(session: AsyncSession, channel_id: str, team_id: str | None = None) -> Incident | None:
    stmt = select(Incident).where(Incident.channel_id == channel_id)
    if team_id is not None:
        stmt = stmt.where(Incident.team_id == team_id)
    return await session.scalar(stmt.order_by(Incident.id.desc()).limit(1))


async def active_incidents(session: AsyncSession) -> list[Incident]:
    return list(await session.scalars(select(Incident).where(Incident.status == ACTIVE).order_by(Incident.id)))


async def create_incident(
    session: AsyncSession,
    *,
    team_id: str,
    channel_id: str,
    title: str,
    severity: int,
    commander_id: str,
    started_at: datetime,
) -> Incident:
    """A new active incident, its id assigned. The unique index on a channel's active
    incident raises IntegrityError (at the latest on commit) when another got there first."""
    incident = Incident(
        team_id=team_id,
        channel_id=channel_id,
        title=title,
        severity=severity,
        status=ACTIVE,
        commander_id=commander_id,
        started_at=started_at,
    )
    session.add(incident)
    await session.flush()
    return incident


async def set_card_ts(session: AsyncSession, incident_id: int, card_ts: str) -> None:
    await session.execute(update(Incident).where(Incident.id == incident_id).values(card_ts=card_ts))


async def delete_incident(session: AsyncSession, incident_id: int) -> None:
    """Remove an incident and its timeline entries (one whose card could not be posted)."""
    await session.execute(delete(TimelineEntry).where(TimelineEntry.incident_id == incident_id))
    await session.execute(delete(Incident).where(Incident.id == incident_id))
