"""Buttons: the incident card's (resolve, continue, publish) and the modal's row buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.content import PostmortemContent
from bot.postmortems import PostmortemError, metadata_incident_id
from bot.services import Services
from bot.slack import error_code
from bot.ui import postmortem_modal as modal
from bot.ui import postmortem_state as form_state
from bot.ui.card import CONTINUE_POSTMORTEM, PUBLISH_POSTMORTEM, RESOLVE
from bot.listeners.answers import warn_privately
from bot.payloads import actor, slack_id, team

log = logging.getLogger("postmortem_bot.listeners.actions")


def _where(body: dict[str, Any]) -> tuple[str, str, str]:
    """(team, channel, user) of a message button, each a well-formed Slack id, or KeyError."""
    channel = body.get("channel")
    ids = (team(body), slack_id(channel.get("id") if isinstance(channel, dict) else None), actor(body))
    if None in ids:
        raise KeyError("team, channel or user")
    return ids  # type: ignore[return-value]


def register(app: AsyncApp, services: Services) -> None:
    postmortems = services.postmortems

    async def open_modal(body: dict[str, Any], respond: AsyncRespond, resolve: bool) -> None:
        try:
            team_id, channel_id, user_id = _where(body)
            await postmortems.open_modal(
                team_id=team_id,
                channel_id=channel_id,
                user_id=user_id,
                trigger_id=body["trigger_id"],
                resolve=resolve,
            )
        except (KeyError, TypeError) as exc:
            log.warning("malformed button payload: %s", exc)
        except PostmortemError as exc:
            await warn_privately(respond, str(exc))
        except SlackApiError as exc:
            log.warning("opening the post-mortem modal failed: %s", error_code(exc))
            await warn_privately(respond, f"Slack would not open the form ({error_code(exc)}). Press the button again.")

    @app.action(RESOLVE)
    async def on_resolve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await open_modal(body, respond, resolve=True)

    @app.action(CONTINUE_POSTMORTEM)
    async def on_continue(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await open_modal(body, respond, resolve=False)

    @app.action(PUBLISH_POSTMORTEM)
    async def on_publish(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            await postmortems.publish(*_where(body))
        except (KeyError, TypeError) as exc:
            log.warning("malformed publish payload: %s", exc)
        except PostmortemError as exc:
            await warn_privately(respond, str(exc))

    @app.action(re.compile(f"^({modal.ADD_ACTION_ITEM}|{modal.REMOVE_ACTION_ITEM})$"))
    async def on_row_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        view = body.get("view") or {}
        if team(body) is None or actor(body) is None:
            log.warning("modal row button without a well-formed team or user id")
            return
        try:
            incident_id = metadata_incident_id(view.get("private_metadata"))
            content = form_state.parse_state((view.get("state") or {}).get("values") or {}, PostmortemContent())
            value = action.get("value")
            remove_key = value if action.get("action_id") == modal.REMOVE_ACTION_ITEM and isinstance(value, str) else None
            await postmortems.change_rows(
                team_id=team(body) or "",
                incident_id=incident_id,
                view_id=view["id"],
                content=content,
                user_id=actor(body) or "",
                remove_key=remove_key,
            )
        except (PostmortemError, KeyError, TypeError) as exc:
            log.warning("could not change the modal's action-item rows: %s", exc)
        except SlackApiError as exc:
            log.warning("views.update for the action-item rows failed: %s", error_code(exc))
