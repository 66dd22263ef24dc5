"""App Home: opening the Home tab publishes it; its pager shows another page.

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
from bot.payloads import slack_id
from bot.ui.home import HOME_PAGE
from bot.ui.item_messages import parse_item_value

log = logging.getLogger("postmortem_bot.listeners.home")


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(tracked(on_home_opened))
    app.action(re.compile(f"^{HOME_PAGE}_(prev|next)$"))(tracked(on_home_page))


async def on_home_opened(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
    """Publish the viewer's Home (the Messages tab opens this event too: nothing to draw there)."""
    if event.get("tab", "home") != "home":
        return
    team_id, user_id = slack_id(body.get("team_id")), slack_id(event.get("user"))
    if team_id is None or user_id is None:
        log.warning("app_home_opened without a well-formed team or user id")
        return
    await services_of(context).home.publish(team_id, user_id)


async def on_home_page(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    who = Actor.of(body)
    page = parse_item_value(action.get("value"))
    if not who.known or page is None:
        log.warning("App Home pager without a user, a team or a page")
        return
    await services_of(context).home.publish(who.team_id, who.user_id, page)
