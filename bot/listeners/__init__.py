"""Listeners: top-level functions, one module per Slack surface, each wired by its `register(app)`.

A listener parses the payload, calls one service (found in bolt's `context`, see
`bot.listeners.context`) and answers with what `bot.ui` builds. Every listener is wired
through `bot.listeners.running.tracked`, so a stopping process can wait for it.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.listeners import actions, commands, followup, home, shortcuts, views


def register_all(app: AsyncApp) -> None:
    # Events API deliveries never reach a listener: they are stored before their ack and
    # applied from the inbox (bot/inbox.py, bot/intake.py).
    commands.register(app)
    shortcuts.register(app)
    actions.register(app)
    views.register(app)
    followup.register(app)
    home.register(app)
