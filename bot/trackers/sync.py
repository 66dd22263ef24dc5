"""Which side's change wins, field by field: pure, so both directions share one rule.

Each item keeps the state both sides last agreed on (`synced`). A field that changed on one
side only goes to the other; changed on both to different values, the later change wins and
the item's DM thread is told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bot.trackers.base import DONE, OPEN, WONT_DO


def local_status(status: str) -> str:
    """An item's status as a ticket's: in progress is still open."""
    return status if status in (DONE, WONT_DO) else OPEN


@dataclass(frozen=True)
class Agreed:
    """What both sides last agreed on."""

    status: str
    due: date | None
    owner: str | None  # Slack user id
    assignee: str | None  # the tracker's account id

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "due": self.due.isoformat() if self.due else None,
            "owner": self.owner,
            "assignee": self.assignee,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Agreed | None:
        if not isinstance(data, dict):
            return None
        due = data.get("due")
        return cls(
            status=str(data.get("status") or OPEN),
            due=date.fromisoformat(due) if due else None,
            owner=data.get("owner"),
            assignee=data.get("assignee"),
        )


@dataclass
class Decision:
    to_local: dict[str, Any] = field(default_factory=dict)  # status, due, assignee (account id)
    to_remote: dict[str, Any] = field(default_factory=dict)  # status, due, owner (Slack id)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (field, "tracker" or "slack")


def decide(
    agreed: Agreed,
    *,
    status: str,
    due: date | None,
    owner: str | None,
    local_at: datetime,
    remote_status: str,
    remote_due: date | None,
    remote_assignee: str | None,
    remote_at: datetime,
) -> Decision:
    decision = Decision()
    pairs = (
        ("status", local_status(status), agreed.status, remote_status, agreed.status),
        ("due", due, agreed.due, remote_due, agreed.due),
        ("owner", owner, agreed.owner, remote_assignee, agreed.assignee),
    )
    for name, mine, mine_before, theirs, theirs_before in pairs:
        here, there = mine != mine_before, theirs != theirs_before
        if here and there and name != "owner" and mine == theirs:
            continue  # both sides made the same change
        if there and (not here or remote_at > local_at):
            decision.to_local[name] = theirs
            if here:
                decision.conflicts.append((name, "tracker"))
        elif here:
            decision.to_remote[name] = mine
            if there:
                decision.conflicts.append((name, "slack"))
    return decision
