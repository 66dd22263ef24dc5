"""The services a listener may call, built once per process with their dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.access import ChannelAccess
from bot.clock import Clock
from bot.config import Settings
from bot.directory import Directory
from bot.action_items import ActionItemService
from bot.incidents import IncidentService
from bot.nudges import NudgeService
from bot.nudge_calendar import WorkingHours
from bot.people import PeopleDirectory
from bot.postmortems import PostmortemService
from bot.reconcile import CallPacer, ReconcileService
from bot.stats import StatsService
from bot.timeline import TimelineService
from storage.db import SessionFactory


@dataclass(frozen=True)
class Services:
    settings: Settings
    incidents: IncidentService
    timeline: TimelineService
    postmortems: PostmortemService
    people: PeopleDirectory
    directory: Directory
    nudges: NudgeService
    action_items: ActionItemService
    access: ChannelAccess
    reconcile: ReconcileService
    stats: StatsService

    @classmethod
    def build(cls, settings: Settings, client: AsyncWebClient, sessions: SessionFactory, clock: Clock) -> "Services":
        directory = Directory(sessions, clock)  # what documents need to name people and channels
        people = PeopleDirectory(client, directory)
        access = ChannelAccess(client, directory)  # one cache of channel membership for every service
        emojis = settings.timeline_emojis
        nudges = NudgeService(sessions, client, clock, people, WorkingHours.parse(settings.working_hours), emojis)
        # One pacer: every conversations.history/replies call of the process shares Tier 3's limit.
        reconcile = ReconcileService(sessions, client, clock, emojis, CallPacer())
        postmortems = PostmortemService(sessions, client, clock, people, emojis, nudges, access, reconcile)
        return cls(
            settings=settings,
            incidents=IncidentService(sessions, client, clock, emojis, access, people),
            timeline=TimelineService(sessions, client, clock, emojis, people, access),
            postmortems=postmortems,
            people=people,
            directory=directory,
            nudges=nudges,
            action_items=ActionItemService(sessions, client, clock, people, nudges, postmortems.refresh_card, access),
            access=access,
            reconcile=reconcile,
            stats=StatsService(sessions, clock),
        )
