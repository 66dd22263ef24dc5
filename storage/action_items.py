"""Action items: one owner, a due date, a status; created by the form or `/postmortem action`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OPEN, ActionItem


async def get_action_item(session: AsyncSession, item_id: int, *, lock: bool = False) -> ActionItem | None:
    """The item `item_id`; with `lock`, held FOR UPDATE until the transaction ends."""
    if lock:
        return await session.get(ActionItem, item_id, with_for_update=True)
    return await session.get(ActionItem, item_id)


async def team_action_item(session: AsyncSession, team_id: str, item_id: int) -> ActionItem | None:
    """The item `item_id` if it is workspace `team_id`'s: ids come from payloads."""
    return await session.scalar(select(ActionItem).where(ActionItem.id == item_id, ActionItem.team_id == team_id))


async def incident_action_items(session: AsyncSession, incident_id: int, *, lock: bool = False) -> list[ActionItem]:
    """Every action item of the incident, however it was added, oldest first."""
    stmt = select(ActionItem).where(ActionItem.incident_id == incident_id).order_by(ActionItem.id)
    return list(await session.scalars(stmt.with_for_update() if lock else stmt))


async def create_action_item(
    session: AsyncSession,
    *,
    team_id: str,
    incident_id: int,
    title: str,
    owner_id: str,
    due: date,
    created_by: str,
    at: datetime,
) -> ActionItem:
    """A new open item, its id assigned (its reminders are planned by that id)."""
    item = ActionItem(
        team_id=team_id,
        incident_id=incident_id,
        title=title,
        owner_id=owner_id,
        due=due,
        status=OPEN,
        created_by=created_by,
        created_at=at,
        updated_at=at,
    )
    session.add(item)
    await session.flush()
    return item


async def delete_action_items(session: AsyncSession, incident_id: int, item_ids: Iterable[int]) -> None:
    """Delete these items of the incident (an id of another incident deletes nothing)."""
    await session.execute(
        delete(ActionItem).where(ActionItem.incident_id == incident_id, ActionItem.id.in_(list(item_ids)))
    )


async def remember_item_dm(session: AsyncSession, item_id: int, channel: str, ts: str) -> None:
    """The item's latest DM, which an answer updates in place."""
    await session.execute(update(ActionItem).where(ActionItem.id == item_id).values(dm_channel=channel, dm_ts=ts))


async def action_items_by_id(
    session: AsyncSession, item_ids: Iterable[int], *, lock: bool = False
) -> dict[int, ActionItem]:
    """These items (those that still exist), by id; with `lock`, held FOR UPDATE."""
    ids = sorted(set(item_ids))
    if not ids:
        return {}
    stmt = select(ActionItem).where(ActionItem.id.in_(ids)).order_by(ActionItem.id)
    return {item.id: item for item in await session.scalars(stmt.with_for_update() if lock else stmt)}


async def remember_item_dms(session: AsyncSession, dms: list[tuple[int, str, str]]) -> None:
    """`remember_item_dm` for many items at once: (item id, channel, ts) each."""
    if not dms:
        return
    await session.execute(
        update(ActionItem.__table__)  # type: ignore[arg-type]
        .where(ActionItem.__table__.c.id == bindparam("item_id"))
        .values(dm_channel=bindparam("channel"), dm_ts=bindparam("ts")),
        [{"item_id": i, "channel": c, "ts": t} for i, c, t in dms],
    )
