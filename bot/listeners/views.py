"""The post-mortem modal: submission (errors, warnings, or done), warnings confirmed, closed."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.content import PostmortemContent
from bot.payloads import actor, team
from bot.postmortems import PostmortemError, describe, metadata_incident_id
from bot.services import Services
from bot.slack import error_code
from bot.ui import postmortem_modal as modal
from bot.ui import postmortem_state as form_state

log = logging.getLogger("postmortem_bot.listeners.views")


def _content(view: dict[str, Any]) -> PostmortemContent:
    return form_state.parse_state((view.get("state") or {}).get("values") or {}, PostmortemContent())


def register(app: AsyncApp, services: Services) -> None:
    postmortems = services.postmortems

    async def tell(client: AsyncWebClient, user_id: str, text: str) -> None:
        """A DM receipt: the modal is gone, the channel may not be the right place."""
        try:
            await client.chat_postMessage(channel=user_id, text=text)
        except SlackApiError as exc:
            log.warning("could not DM %s: %s", user_id, error_code(exc))

    @app.view(modal.CALLBACK_ID)
    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        user_id, team_id = actor(body), team(body)
        if user_id is None or team_id is None:
            log.warning("view submission without a user or a team")
            await ack()
            return
        try:
            incident_id = metadata_incident_id(view.get("private_metadata"))
        except PostmortemError as exc:
            await ack(response_action="errors", errors={modal.block_id("pm_title", modal.revision_of(view)): str(exc)})
            return
        content = _content(view)
        revision = modal.revision_of(view)
        check = await postmortems.check_submission(team_id, incident_id, content, user_id, revision)
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
                await postmortems.stage_submission(team_id, incident_id, content, user_id)
            except PostmortemError as exc:
                log.warning("post-mortem submission not staged: %s", exc)
            return
        await ack()
        try:
            submitted = await postmortems.submit(team_id, incident_id, user_id, content)
        except PostmortemError as exc:
            await tell(client, user_id, f":warning: {exc}")
            return
        await tell(client, user_id, describe(submitted))

    @app.view(modal.WARNINGS_CALLBACK_ID)
    async def on_submit_anyway(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        await ack(response_action="clear")
        user_id, team_id = actor(body), team(body)
        if user_id is None or team_id is None:
            return
        try:
            submitted = await postmortems.submit(team_id, metadata_incident_id(view.get("private_metadata")), user_id)
        except PostmortemError as exc:
            await tell(client, user_id, f":warning: {exc}")
            return
        await tell(client, user_id, describe(submitted))

    @app.view_closed(modal.CALLBACK_ID)
    async def on_closed(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        user_id, team_id = actor(body), team(body)
        if user_id is None or team_id is None:
            return
        try:
            await postmortems.save_draft(team_id, metadata_incident_id(view.get("private_metadata")), _content(view), user_id)
        except PostmortemError as exc:
            log.warning("closed post-mortem modal not saved: %s", exc)

    # Opened with the trigger id while the real modal loads; closing it means nothing.
    @app.view_closed("postmortem_loading")
    async def on_loading_closed(ack: AsyncAck) -> None:
        await ack()
