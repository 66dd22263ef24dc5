"""Follow-through: the buttons in action-item DMs, their small modals, and the meeting form."""

from __future__ import annotations

import json
from datetime import timedelta
import logging
from typing import Any, Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.action_items import Answer, AnswerError, NotAllowed
from bot.payloads import actor, team
from bot.services import Services
from bot.slack import SLACK_FAILURES, error_code
from bot.ui import item_messages as ui
from bot.ui import meeting as meeting_ui
from bot.ui.card import SCHEDULE_MEETING
from bot.views import ActionItemView
from bot.listeners.answers import warn_privately

log = logging.getLogger("postmortem_bot.listeners.followup")


def register(app: AsyncApp, services: Services) -> None:
    items = services.action_items

    async def apply(body: dict[str, Any], respond: AsyncRespond, item_id: int | None, answer: Answer) -> None:
        if item_id is None or actor(body) is None or team(body) is None:
            log.warning("action-item button without an item id, a user or a team")
            return
        try:
            await items.answer(team(body) or "", item_id, actor(body) or "", answer)
        except (NotAllowed, AnswerError) as exc:
            await warn_privately(respond, str(exc))

    @app.action(ui.ITEM_DONE)
    async def on_done(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await apply(body, respond, ui.parse_item_value(action.get("value")), Answer("done"))

    @app.action(ui.ITEM_IN_PROGRESS)
    async def on_in_progress(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await apply(body, respond, ui.parse_item_value(action.get("value")), Answer("in_progress"))

    @app.action(ui.ITEM_SNOOZE)
    async def on_snooze(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """The length is chosen in the DM; a small form takes the optional reason."""
        await ack()
        selected = action.get("selected_option")
        parsed = ui.parse_snooze_value(selected.get("value") if isinstance(selected, dict) else None)
        if parsed is None:
            log.warning("snooze option without an item id and a length")
            return
        item_id, length = parsed
        try:
            item = await items.check_allowed(team(body) or "", item_id, actor(body) or "")
            await client.views_open(trigger_id=body["trigger_id"], view=ui.snooze_modal(item, length=length))
        except (NotAllowed, AnswerError) as exc:
            await warn_privately(respond, str(exc))
        except SlackApiError as exc:
            await warn_privately(respond, f"Slack would not open the form ({error_code(exc)}); choose again.")

    def modal_opener(build: Callable[[ActionItemView], dict]) -> Callable[..., Awaitable[None]]:
        """Buttons that need more than a click open a small modal, checked first for who may."""

        async def open_modal(
            ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
        ) -> None:
            await ack()
            item_id = ui.parse_item_value(action.get("value"))
            if item_id is None:
                return
            try:
                item = await items.check_allowed(team(body) or "", item_id, actor(body) or "")
                await client.views_open(trigger_id=body["trigger_id"], view=build(item))
            except (NotAllowed, AnswerError) as exc:
                await warn_privately(respond, str(exc))
            except SlackApiError as exc:
                await warn_privately(respond, f"Slack would not open the form ({error_code(exc)}); press the button again.")

        return open_modal

    app.action(ui.ITEM_CHANGE_DUE)(modal_opener(lambda item: ui.change_due_modal(item, today=item.due)))
    app.action(ui.ITEM_NOT_MINE)(modal_opener(ui.not_mine_modal))
    app.action(ui.ITEM_WONT_DO)(modal_opener(ui.wont_do_modal))

    async def submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], answer: Answer, block: str) -> None:
        item_id = ui.read_item_id(view.get("private_metadata"))
        if item_id is None or actor(body) is None or team(body) is None:
            await ack()
            return
        try:
            # Fast checks first so errors land on the field; the rest happens after the ack.
            await items.check_allowed(team(body) or "", item_id, actor(body) or "")
        except (NotAllowed, AnswerError) as exc:
            await ack(response_action="errors", errors={block: str(exc)})
            return
        await ack()
        try:
            await items.answer(team(body) or "", item_id, actor(body) or "", answer)
        except (NotAllowed, AnswerError) as exc:
            log.warning("action-item answer refused after ack: %s", exc)

    @app.view(ui.CHANGE_DUE_CALLBACK)
    async def on_change_due(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        due = ui.read_change_due(view.get("state", {}).get("values", {}))
        # UTC's date is a day's grace either way; the service checks the owner's own date.
        errors = ui.change_due_errors(due, today=items.clock.now().date() - timedelta(days=1))
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await submit(ack, body, view, Answer("change_due", due=due), ui.CHANGE_DUE_BLOCK)

    @app.view(ui.SNOOZE_CALLBACK)
    async def on_snooze_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            length = json.loads(view.get("private_metadata") or "{}").get("length")
        except ValueError:
            length = None
        reason = ui.read_snooze(view.get("state", {}).get("values", {}))
        await submit(ack, body, view, Answer("snooze", snooze=length, note=reason), ui.SNOOZE_REASON_BLOCK)

    @app.view(ui.NOT_MINE_CALLBACK)
    async def on_not_mine(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        owner, note = ui.read_not_mine(view.get("state", {}).get("values", {}))
        await submit(ack, body, view, Answer("not_mine", new_owner=owner, note=note), ui.NOT_MINE_OWNER_BLOCK)

    @app.view(ui.WONT_DO_CALLBACK)
    async def on_wont_do(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reason = ui.read_wont_do(view.get("state", {}).get("values", {}))
        if not reason.strip():
            await ack(response_action="errors", errors={ui.WONT_DO_BLOCK: "Say why: the reason goes into the post-mortem."})
            return
        await submit(ack, body, view, Answer("wont_do", note=reason), ui.WONT_DO_BLOCK)

    @app.action(SCHEDULE_MEETING)
    async def on_schedule_meeting(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        incident_id = ui.parse_item_value(action.get("value"))
        if incident_id is None:
            return
        try:
            incident = await items.incident_summary(team(body) or "", incident_id, actor(body) or "")
            await client.views_open(trigger_id=body["trigger_id"], view=meeting_ui.meeting_modal(incident, initial_attendees=[actor(body) or ""]))
        except AnswerError as exc:
            await warn_privately(respond, str(exc))
        except SlackApiError as exc:
            await warn_privately(respond, f"Slack would not open the form ({error_code(exc)}); press the button again.")

    @app.view(meeting_ui.MEETING_CALLBACK)
    async def on_meeting(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        incident_id = meeting_ui.read_incident_id(view.get("private_metadata"))
        day, at, attendees, location = meeting_ui.read_meeting(view.get("state", {}).get("values", {}))
        if actor(body) is None or team(body) is None:
            await ack()
            return
        if incident_id is None or day is None or at is None:
            await ack(response_action="errors", errors={meeting_ui.MEETING_DATE_BLOCK: "Pick a date and a time."})
            return
        try:
            # Who may schedule it is checked before the ack, so a refusal shows on the form.
            await items.incident_summary(team(body) or "", incident_id, actor(body) or "")
        except AnswerError as exc:
            await ack(response_action="errors", errors={meeting_ui.MEETING_DATE_BLOCK: str(exc)})
            return
        await ack()
        try:
            meeting = await items.schedule_meeting(
                team_id=team(body) or "", incident_id=incident_id, user_id=actor(body) or "",
                day=day, at=at, attendees=attendees, location=location,
            )
        except AnswerError as exc:
            log.warning("meeting not scheduled: %s", exc)
            return
        if meeting.problem:  # the form is gone: tell the person in a DM
            try:
                await client.chat_postMessage(channel=actor(body) or "", text=f":warning: Review meeting set. {meeting.problem}")
            except SLACK_FAILURES as exc:
                log.warning("could not tell %s about the meeting announcement: %s", actor(body), error_code(exc))
