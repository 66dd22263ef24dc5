"""Answering the person privately through response_url, from any listener."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncRespond

from bot.ui.answers import warning

log = logging.getLogger("postmortem_bot.listeners")


async def answer_privately(respond: AsyncRespond, message: dict[str, Any]) -> None:
    """Send `message` (ephemeral Block Kit) to whoever acted; never fail the listener.

    A modal's buttons carry no response_url and an old one may be dead: either is logged,
    the work already done stands.
    """
    try:
        await respond(**message, replace_original=False)
    except Exception:
        log.exception("could not answer through response_url")


async def warn_privately(respond: AsyncRespond, text: str) -> None:
    """A one-line ephemeral warning (mrkdwn written by the bot; escape user parts first)."""
    await answer_privately(respond, warning(text))
