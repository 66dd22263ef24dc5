"""App Home: its pager shows another page (opening the tab is an event: bot/intake.py publishes it).

The item buttons on Home are the DM's own (bot/listeners/followup.py answers them, and the
action-item service publishes Home again after every answer); the incident buttons are the
card's (bot/listeners/actions.py, followup.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.listeners.context import Actor, services_of
from bot.listeners.running import tracked
from bot.ui.home import HOME_PAGE
from bot.ui.item_messages import parse_item_value

log = logging.getLogger("postmortem_bot.listeners.home")


def register(app: AsyncApp) -> None:
    app.action(re.compile(f"^{HOME_PAGE}_(prev|next)$"))(tracked(on_home_page))


async def on_home_page(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    who = Actor.of(body)
    page = parse_item_value(action.get("value"))
    if not who.known or page is None:
        log.warning("App Home pager without a user, a team or a page")
        return
    await services_of(context).home.publish(who.team_id, who.user_id, page)
