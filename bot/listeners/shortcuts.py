"""Message shortcut "Add to timeline"."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot.access import AccessDenied
from bot.listeners.answers import answer_privately, warn_privately
from bot.listeners.context import Actor, services_of
from bot.listeners.running import tracked
from bot.payloads import MalformedPayload, require_id
from bot.ui import answers

log = logging.getLogger("postmortem_bot.listeners.shortcuts")


def register(app: AsyncApp) -> None:
    app.shortcut("add_to_timeline")(tracked(on_add_to_timeline))


async def on_add_to_timeline(
    ack: AsyncAck, shortcut: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    await ack()
    try:
        who = Actor.of(shortcut)
        if not who.known:
            raise MalformedPayload("no well-formed team or user id")
        channel_id = require_id(shortcut["channel"], "id")
        outcome = await services_of(context).timeline.promote_by_shortcut(
            who.team_id, channel_id, shortcut["message"], who.user_id
        )
    except (KeyError, TypeError, MalformedPayload) as exc:
        log.warning("malformed message shortcut payload: %s", exc)
        return
    except AccessDenied as exc:
        await warn_privately(respond, str(exc))
        return
    if outcome.incident is None:
        answer = answers.shortcut_without_incident()
    else:
        answer = answers.added_by_shortcut(outcome.incident.title, outcome.added)
    await answer_privately(respond, answer)
