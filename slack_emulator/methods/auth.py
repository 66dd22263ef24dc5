"""auth.test, and apps.connections.open: the one app-token method, where Socket Mode starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_emulator.api import JSON, Args, api_method

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator


@api_method("auth.test", scope=None)
def auth_test(slack: SlackEmulator, args: Args) -> JSON:
    bot = slack._users[slack.bot_user_id]
    return {
        "url": f"https://{slack.team_domain}.slack.com/",
        "team": slack.team_domain,
        "user": bot.name,
        "team_id": slack.team_id,
        "user_id": slack.bot_user_id,
        "bot_id": slack.bot_id,
        "is_enterprise_install": False,
    }


@api_method("apps.connections.open", scope="connections:write", token_type="app")
def apps_connections_open(slack: SlackEmulator, args: Args) -> JSON:
    return {"url": slack._new_socket_url()}
