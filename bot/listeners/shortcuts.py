"""Message shortcut "Add to timeline"."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.access import AccessDenied
from bot.listeners.answers import answer_privately, warn_privately
from bot.payloads import MalformedPayload, actor, require_id, team
from bot.services import Services
from bot.ui.help import ephemeral
from bot.ui.text import escape

log = logging.getLogger("postmortem_bot.listeners.shortcuts")


def register(app: AsyncApp, services: Services) -> None:
    @app.shortcut("add_to_timeline")
    async def add_to_timeline(ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            team_id, user_id = team(shortcut), actor(shortcut)
            if team_id is None or user_id is None:
                raise MalformedPayload("no well-formed team or user id")
            channel_id = require_id(shortcut["channel"], "id")
            outcome = await services.timeline.promote_by_shortcut(team_id, channel_id, shortcut["message"], user_id)
        except (KeyError, TypeError, MalformedPayload) as exc:
            log.warning("malformed message shortcut payload: %s", exc)
            return
        except AccessDenied as exc:
            await warn_privately(respond, str(exc))
            return
        if outcome.incident is None:
            answer = ephemeral("There is no incident in this channel, so there is no timeline to add to.")
        elif outcome.added:
            answer = ephemeral(f"Added to the timeline of *{escape(outcome.incident.title)}*.")
        else:
            answer = ephemeral(f"That message is already on the timeline of *{escape(outcome.incident.title)}*.")
        await answer_privately(respond, answer)
