"""The post-mortem modal: submission (errors, warnings, or done), warnings confirmed, closed."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.listeners.context import Actor, services_of
from bot.listeners.running import tracked
from bot.postmortem_content import PostmortemContent
from bot.postmortems import PostmortemError, describe, metadata_incident_id
from bot.slack import error_code
from bot.ui import postmortem_modal as modal
from bot.ui import postmortem_state as form_state
from bot.ui.answers import warning_text

log = logging.getLogger("postmortem_bot.listeners.views")

# Opened with the trigger id while the real modal loads; closing it means nothing.
LOADING_CALLBACK_ID = "postmortem_loading"


def register(app: AsyncApp) -> None:
    app.view(modal.CALLBACK_ID)(tracked(on_submit))
    app.view(modal.WARNINGS_CALLBACK_ID)(tracked(on_submit_anyway))
    app.view_closed(modal.CALLBACK_ID)(tracked(on_closed))
    app.view_closed(LOADING_CALLBACK_ID)(tracked(on_loading_closed))


def _content(view: dict[str, Any]) -> PostmortemContent:
    return form_state.parse_state((view.get("state") or {}).get("values") or {}, PostmortemContent())


async def _tell(client: AsyncWebClient, user_id: str, text: str) -> None:
    """A DM receipt: the modal is gone, the channel may not be the right place."""
    try:
        await client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as exc:
        log.warning("could not DM %s: %s", user_id, error_code(exc))


async def on_submit(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    who = Actor.of(body)
    if not who.known:
        log.warning("view submission without a user or a team")
        await ack()
        return
    try:
        incident_id = metadata_incident_id(view.get("private_metadata"))
    except PostmortemError as exc:
        await ack(response_action="errors", errors={modal.block_id("pm_title", modal.revision_of(view)): str(exc)})
        return
    postmortems = services_of(context).postmortems
    content = _content(view)
    revision = modal.revision_of(view)
    check = await postmortems.check_submission(who.team_id, incident_id, content, who.user_id, revision)
    if check.errors:
        await ack(response_action="errors", errors=check.errors)
        return
    if check.warnings:
        await ack(
            response_action="push",
            view=modal.warnings_view(
                [(form_state.field_label(w.field, content), w.message) for w in check.warnings], incident_id=incident_id
            ),
        )
        try:
            await postmortems.stage_submission(who.team_id, incident_id, content, who.user_id)
        except PostmortemError as exc:
            log.warning("post-mortem submission not staged: %s", exc)
        return
    await ack()
    try:
        submitted = await postmortems.submit(who.team_id, incident_id, who.user_id, content)
    except PostmortemError as exc:
        await _tell(client, who.user_id, warning_text(str(exc)))
        return
    await _tell(client, who.user_id, describe(submitted))


async def on_submit_anyway(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """ "Submit anyway" on the quality warnings: the staged submission goes in as it is."""
    await ack(response_action="clear")
    who = Actor.of(body)
    if not who.known:
        return
    try:
        incident_id = metadata_incident_id(view.get("private_metadata"))
        submitted = await services_of(context).postmortems.submit(who.team_id, incident_id, who.user_id)
    except PostmortemError as exc:
        await _tell(client, who.user_id, warning_text(str(exc)))
        return
    await _tell(client, who.user_id, describe(submitted))


async def on_closed(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
    """Closing the form keeps what it held as the draft."""
    await ack()
    who = Actor.of(body)
    if not who.known:
        return
    try:
        incident_id = metadata_incident_id(view.get("private_metadata"))
        await services_of(context).postmortems.save_draft(who.team_id, incident_id, _content(view), who.user_id)
    except PostmortemError as exc:
        log.warning("closed post-mortem modal not saved: %s", exc)


async def on_loading_closed(ack: AsyncAck) -> None:
    await ack()
