"""The trackers the settings turn on, and the service around them."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.config import Settings
from bot.nudges import NudgeService
from bot.trackers.base import Tracker
from bot.trackers.jira import JiraTracker
from bot.trackers.linear import LinearTracker
from bot.trackers.service import TicketService
from storage.db import SessionFactory


def build_tickets(
    settings: Settings, sessions: SessionFactory, client: AsyncWebClient, clock: Clock, nudges: NudgeService
) -> TicketService:
    trackers: dict[str, Tracker] = {}
    projects: dict[str, str] = {}
    secrets: dict[str, str] = {}
    if settings.jira_url and settings.jira_email and settings.jira_api_token:
        trackers["jira"] = JiraTracker(
            settings.jira_url, settings.jira_email, settings.jira_api_token, settings.jira_issue_type
        )
        if settings.jira_project:
            projects["jira"] = settings.jira_project
        if settings.jira_webhook_secret:
            secrets["jira"] = settings.jira_webhook_secret
    if settings.linear_api_key:
        trackers["linear"] = LinearTracker(settings.linear_api_key, settings.linear_api_url)
        if settings.linear_team:
            projects["linear"] = settings.linear_team
        if settings.linear_webhook_secret:
            secrets["linear"] = settings.linear_webhook_secret
    return TicketService(sessions, client, clock, nudges, trackers, projects, secrets)
