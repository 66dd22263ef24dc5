"""The services a listener may call, built once per process with their dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.config import Settings
from bot.incidents import IncidentService
from bot.timeline import TimelineService
from storage.db import SessionFactory


@dataclass(frozen=True)
class Services:
    settings: Settings
    incidents: IncidentService
    timeline: TimelineService

    @classmethod
    def build(cls, settings: Settings, client: AsyncWebClient, sessions: SessionFactory, clock: Clock) -> "Services":
        return cls(
            settings=settings,
            incidents=IncidentService(sessions, client, clock, settings.timeline_emojis),
            timeline=TimelineService(sessions, client, clock, settings.timeline_emojis),
        )
