"""The clock is a dependency: production, `sweep --at` and tests share one code path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that reads what it is told; `advance` moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, by: timedelta) -> None:
        self._at += by


class ShiftedClock:
    """The system clock moved so that it read `start` when made: it ticks in real time, so
    durations and the order of events stay real while the date and hour are the chosen
    ones. Tests pin their instants with it; `set` and `advance` jump it."""

    def __init__(self, start: datetime) -> None:
        self._offset = timedelta(0)
        self.set(start)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("ShiftedClock needs a timezone-aware datetime")
        self._offset = at - datetime.now(UTC)

    def advance(self, by: timedelta) -> None:
        self._offset += by
