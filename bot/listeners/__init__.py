"""Listeners: top-level functions, one module per Slack surface, each wired by its `register(app)`.

A listener parses the payload, calls one service (found in bolt's `context`, see
`bot.listeners.context`) and answers with what `bot.ui` builds. Every listener is wired
through `bot.listeners.running.tracked`, so a stopping process can wait for it.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, events, followup, home, shortcuts, views


def register_all(app: AsyncApp) -> None:
    # First: bolt tries listeners in registration order on every request, and channel
    # messages and reactions are nearly all the traffic; matching one against the 20-odd
    # command, action and view listeners cost more than the rest of bolt's dispatch.
    events.register(app)
    commands.register(app)
    shortcuts.register(app)
    actions.register(app)
    views.register(app)
    followup.register(app)
    home.register(app)
    # Last: the catch-all for event types nobody else handles.
    events.register_catch_all(app)
