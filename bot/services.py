"""The services a listener may call, built once per process with their dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.access import ChannelAccess
from bot.action_items import ActionItemService
from bot.clock import Clock
from bot.config import Settings
from bot.directory import Directory
from bot.home import HomeService
from bot.incidents import IncidentService
from bot.intake import IntakeService
from bot.meetings import MeetingService
from bot.nudge_calendar import WorkingHours
from bot.nudges import NudgeService
from bot.people import PeopleDirectory
from bot.postmortems import PostmortemService
from bot.reconcile import CallPacer, ReconcileService
from bot.repeats import RepeatFinder
from bot.review import ReviewService
from bot.stats import StatsService
from bot.timeline import TimelineService
from bot.trackers.service import TicketService
from bot.trackers.setup import build_tickets
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
    meetings: MeetingService
    access: ChannelAccess
    reconcile: ReconcileService
    stats: StatsService
    trackers: TicketService
    intake: IntakeService
    home: HomeService
    review: ReviewService

    @classmethod
    def build(cls, settings: Settings, client: AsyncWebClient, sessions: SessionFactory, clock: Clock) -> Services:
        directory = Directory(sessions, clock)  # what documents need to name people and channels
        people = PeopleDirectory(client, directory)
        access = ChannelAccess(client, directory)  # one cache of channel membership for every service
        emojis = settings.timeline_emojis
        nudges = NudgeService(sessions, client, clock, people, WorkingHours.parse(settings.working_hours), emojis)
        # One pacer: every conversations.history/replies call of the process shares Tier 3's limit.
        reconcile = ReconcileService(sessions, client, clock, emojis, CallPacer())
        # Each domain has one owner, which the others call: the card is the incidents' (posted
        # and redrawn there), action items are the action items' (the form's rows too).
        stats = StatsService(sessions, clock)
        # App Home is published again by whoever changes what it shows (items, incidents).
        home = HomeService(sessions, client, clock, stats, people)
        # The quarterly review's post is a kind of nudge: the sweep plans and sends it.
        review = ReviewService(sessions, client, clock, stats, settings.review_channel)
        review.hook_into(nudges)
        repeats = RepeatFinder(sessions)
        incidents = IncidentService(sessions, client, clock, emojis, access, people, home=home, repeats=repeats)
        trackers = build_tickets(settings, sessions, client, clock, nudges)
        incidents.tracker_label = trackers.describe
        action_items = ActionItemService(sessions, client, clock, people, nudges, access, trackers, home=home)
        postmortems = PostmortemService(
            sessions, client, clock, people, emojis, nudges, access, reconcile, incidents, action_items
        )
        timeline = TimelineService(sessions, client, clock, emojis, people, access)
        return cls(
            settings=settings,
            incidents=incidents,
            timeline=timeline,
            postmortems=postmortems,
            people=people,
            directory=directory,
            nudges=nudges,
            action_items=action_items,
            meetings=MeetingService(sessions, client, clock, people, nudges, incidents, access),
            access=access,
            reconcile=reconcile,
            stats=stats,
            trackers=trackers,
            intake=IntakeService(timeline, people, access, home),
            home=home,
            review=review,
        )
