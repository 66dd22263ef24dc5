"""Buttons: the incident card's (resolve, continue, publish) and the modal's row buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.listeners.answers import warn_privately
from bot.listeners.context import Actor, services_of
from bot.listeners.running import tracked
from bot.payloads import slack_id
from bot.postmortem_content import PostmortemContent
from bot.postmortems import PostmortemError, metadata_incident_id
from bot.slack import error_code
from bot.ui import answers
from bot.ui import postmortem_modal as modal
from bot.ui import postmortem_state as form_state
from bot.ui.card import CONTINUE_POSTMORTEM, PUBLISH_POSTMORTEM, RESOLVE
from bot.ui.item_messages import parse_item_value

log = logging.getLogger("postmortem_bot.listeners.actions")


def register(app: AsyncApp) -> None:
    app.action(RESOLVE)(tracked(on_resolve))
    app.action(CONTINUE_POSTMORTEM)(tracked(on_continue))
    app.action(PUBLISH_POSTMORTEM)(tracked(on_publish))
    app.action(re.compile(f"^({modal.ADD_ACTION_ITEM}|{modal.REMOVE_ACTION_ITEM})$"))(tracked(on_row_button))


async def _where(body: dict[str, Any], context: AsyncBoltContext) -> tuple[str, str, str]:
    """(team, channel, user) of a card button, each a well-formed Slack id, or KeyError.

    On the card the channel is the message's; on App Home (no channel) it is the channel of
    the incident the button's value names, in the presser's workspace.
    """
    who = Actor.of(body)
    channel = body.get("channel")
    channel_id = slack_id(channel.get("id") if isinstance(channel, dict) else None)
    if channel_id is None and who.known:
        actions = body.get("actions")
        value = (
            actions[0].get("value") if isinstance(actions, list) and actions and isinstance(actions[0], dict) else None
        )
        incident_id = parse_item_value(value)
        if incident_id is not None:
            channel_id = await services_of(context).incidents.channel_of(who.team_id, incident_id)
    if not who.known or channel_id is None:
        raise KeyError("team, channel or user")
    return who.team_id, channel_id, who.user_id


async def on_resolve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    await ack()
    await _open_modal(body, respond, context, resolve=True)


async def on_continue(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    await ack()
    await _open_modal(body, respond, context, resolve=False)


async def _open_modal(body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, resolve: bool) -> None:
    try:
        team_id, channel_id, user_id = await _where(body, context)
        await services_of(context).postmortems.open_modal(
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
        await warn_privately(respond, answers.card_form_refused(error_code(exc)))


async def on_publish(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext) -> None:
    await ack()
    try:
        await services_of(context).postmortems.publish(*await _where(body, context))
    except (KeyError, TypeError) as exc:
        log.warning("malformed publish payload: %s", exc)
    except PostmortemError as exc:
        await warn_privately(respond, str(exc))


async def on_row_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
    """The post-mortem modal's "Add action item" and "Remove": the rows change in place."""
    await ack()
    view = body.get("view") or {}
    who = Actor.of(body)
    if not who.known:
        log.warning("modal row button without a well-formed team or user id")
        return
    try:
        incident_id = metadata_incident_id(view.get("private_metadata"))
        content = form_state.parse_state((view.get("state") or {}).get("values") or {}, PostmortemContent())
        value = action.get("value")
        remove_key = value if action.get("action_id") == modal.REMOVE_ACTION_ITEM and isinstance(value, str) else None
        await services_of(context).postmortems.change_rows(
            team_id=who.team_id,
            incident_id=incident_id,
            view_id=view["id"],
            content=content,
            user_id=who.user_id,
            remove_key=remove_key,
        )
    except (PostmortemError, KeyError, TypeError) as exc:
        log.warning("could not change the modal's action-item rows: %s", exc)
    except SlackApiError as exc:
        log.warning("views.update for the action-item rows failed: %s", error_code(exc))
