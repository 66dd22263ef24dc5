"""Settings from the environment (the interface contract in DESIGN.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.nudge_calendar import WorkingHours

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./postmortem.db"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# Reactions that put a message on the timeline unless POSTMORTEM_TIMELINE_EMOJI says otherwise.
DEFAULT_TIMELINE_EMOJIS: tuple[str, ...] = ("pushpin",)
DEFAULT_LINEAR_API_URL = "https://api.linear.app/graphql"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# What each environment variable is, and its default, as `--help` and the README show them.
ENVIRONMENT: dict[str, tuple[str, str | None]] = {
    "SLACK_BOT_TOKEN": ("the bot token (xoxb-), from the app's Install App page", None),
    "SLACK_SIGNING_SECRET": ("checks that requests come from Slack (Basic Information, App Credentials)", None),
    "SLACK_APP_TOKEN": ("app-level token (xapp-) with connections:write (Basic Information)", None),
    "DATABASE_URL": ("sqlite+aiosqlite:///path.db or postgresql+asyncpg://user:password@host/db", DEFAULT_DATABASE_URL),
    "SLACK_API_URL": ("Slack Web API base URL", DEFAULT_SLACK_API_URL),
    "LOG_LEVEL": (", ".join(LOG_LEVELS), "INFO"),
    "POSTMORTEM_TIMELINE_EMOJI": (
        "comma-separated reactions that put a message on the timeline",
        ",".join(DEFAULT_TIMELINE_EMOJIS),
    ),
    "POSTMORTEM_WORKING_HOURS": ("when nudges may reach people, in their own time zone", "09:00-17:00 mon-fri"),
    "POSTMORTEM_TEMPLATES": ("a directory whose templates override the built-in ones", None),
    "JIRA_URL": ("Jira Cloud site, e.g. https://acme.atlassian.net", None),
    "JIRA_EMAIL": ("the Jira account the bot acts as", None),
    "JIRA_API_TOKEN": ("that account's API token (id.atlassian.com, Security, API tokens)", None),
    "JIRA_PROJECT": ("default Jira project key for tickets", None),
    "JIRA_ISSUE_TYPE": ("issue type of the tickets", "Task"),
    "JIRA_WEBHOOK_SECRET": ("secret of the Jira webhook pointed at POST /trackers/jira", None),
    "LINEAR_API_KEY": ("Linear personal API key", None),
    "LINEAR_TEAM": ("default Linear team key for tickets", None),
    "LINEAR_API_URL": ("Linear GraphQL endpoint", DEFAULT_LINEAR_API_URL),
    "LINEAR_WEBHOOK_SECRET": ("secret of the Linear webhook pointed at POST /trackers/linear", None),
    "POSTMORTEM_REVIEW_CHANNEL": (
        "channel id where the sweep posts each past quarter's review (none: not posted)",
        None,
    ),
}
TRACKER_ENVIRONMENT = tuple(name for name in ENVIRONMENT if name.startswith(("JIRA_", "LINEAR_")))


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what to do."""


@dataclass(frozen=True)
class Settings:
    bot_token: str | None = None
    signing_secret: str | None = None
    app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    # Reactions that promote a message to the draft timeline.
    timeline_emojis: tuple[str, ...] = DEFAULT_TIMELINE_EMOJIS
    log_level: str = "INFO"
    # When nudges may reach people, in their own time zone: "09:00-17:00 mon-fri".
    working_hours: str | None = None
    # Trackers (bot/trackers/): each is on when its credentials are set.
    jira_url: str | None = None
    jira_email: str | None = None
    jira_api_token: str | None = None
    jira_project: str | None = None
    jira_issue_type: str = "Task"
    jira_webhook_secret: str | None = None
    linear_api_key: str | None = None
    linear_team: str | None = None
    linear_api_url: str = DEFAULT_LINEAR_API_URL
    linear_webhook_secret: str | None = None
    # Where the sweep posts the past quarter's review at the start of each quarter (a channel id).
    review_channel: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        api_url = env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL
        # AsyncWebClient joins base_url and method name by plain concatenation.
        if not api_url.endswith("/"):
            api_url += "/"
        emojis = tuple(e.strip().strip(":") for e in env.get("POSTMORTEM_TIMELINE_EMOJI", "").split(",") if e.strip())
        log_level = (env.get("LOG_LEVEL") or "INFO").strip().upper()
        if log_level not in LOG_LEVELS:
            raise ConfigError(
                f"LOG_LEVEL={env.get('LOG_LEVEL')!r} is not a level: set it to one of {', '.join(LOG_LEVELS)}"
            )
        working_hours = env.get("POSTMORTEM_WORKING_HOURS") or None
        review_channel = (env.get("POSTMORTEM_REVIEW_CHANNEL") or "").strip() or None
        if review_channel is not None and not re.fullmatch(r"[CG][A-Z0-9]{2,39}", review_channel):
            raise ConfigError(
                f"POSTMORTEM_REVIEW_CHANNEL={review_channel!r} is not a channel id: use the id "
                "(C0123ABCD, from the channel's details), not its name"
            )
        try:
            WorkingHours.parse(working_hours)  # read again where used; checked here, before anything starts
        except ValueError as exc:
            raise ConfigError(f"POSTMORTEM_WORKING_HOURS: {exc}") from None
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            slack_api_url=api_url,
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            timeline_emojis=emojis or DEFAULT_TIMELINE_EMOJIS,
            log_level=log_level,
            working_hours=working_hours,
            jira_url=(env.get("JIRA_URL") or "").rstrip("/") or None,
            jira_email=env.get("JIRA_EMAIL") or None,
            jira_api_token=env.get("JIRA_API_TOKEN") or None,
            jira_project=(env.get("JIRA_PROJECT") or "").strip().upper() or None,
            jira_issue_type=env.get("JIRA_ISSUE_TYPE") or "Task",
            jira_webhook_secret=env.get("JIRA_WEBHOOK_SECRET") or None,
            linear_api_key=env.get("LINEAR_API_KEY") or None,
            linear_team=(env.get("LINEAR_TEAM") or "").strip().upper() or None,
            linear_api_url=env.get("LINEAR_API_URL") or DEFAULT_LINEAR_API_URL,
            linear_webhook_secret=env.get("LINEAR_WEBHOOK_SECRET") or None,
            review_channel=review_channel,
        )

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first missing environment variable among `names`."""
        attrs = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.app_token,
        }
        for name in names:
            if not attrs[name]:
                raise ConfigError(f"{name} is not set: export it (see README.md, 'Configuration') and start again")
