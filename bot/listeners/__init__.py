"""Thin adapters, one module per Slack surface, each with `register(app, services)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, events, followup, shortcuts, views
from bot.services import Services


def register_all(app: AsyncApp, services: Services) -> None:
    commands.register(app, services)
    shortcuts.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    followup.register(app, services)
    # Last: it holds the catch-all for event types nobody else handles.
    events.register(app, services)
