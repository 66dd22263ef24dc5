"""Thin adapters, one module per Slack surface, each with `register(app, services)`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, events, followup, shortcuts, views
from bot.services import Services


def register_all(app: AsyncApp, services: Services) -> None:
    # First: bolt tries listeners in registration order on every request, and channel
    # messages and reactions are nearly all the traffic; matching one against the 20-odd
    # command, action and view listeners cost more than the rest of bolt's dispatch.
    events.register(app, services)
    commands.register(app, services)
    shortcuts.register(app, services)
    actions.register(app, services)
    views.register(app, services)
    followup.register(app, services)
    # Last: the catch-all for event types nobody else handles.
    events.register_catch_all(app, services)
