"""Follow-through: the buttons in action-item DMs, their small modals, and the meeting form."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.action_items import ActionItemService, Answer, AnswerError, NotAllowed
from bot.listeners.answers import warn_privately
from bot.listeners.context import Actor, services_of
from bot.listeners.running import tracked
from bot.meetings import MeetingError
from bot.slack import SLACK_FAILURES, error_code
from bot.ui import answers
from bot.ui import item_messages as ui
from bot.ui import meeting as meeting_ui
from bot.ui.card import SCHEDULE_MEETING
from bot.views import ActionItemView

log = logging.getLogger("postmortem_bot.listeners.followup")


def register(app: AsyncApp) -> None:
    app.action(ui.ITEM_DONE)(tracked(on_done))
    app.action(ui.ITEM_IN_PROGRESS)(tracked(on_in_progress))
    app.action(ui.ITEM_SNOOZE)(tracked(on_snooze))
    for action_id in ITEM_FORMS:
        app.action(action_id)(tracked(on_item_form_button))
    app.view(ui.CHANGE_DUE_CALLBACK)(tracked(on_change_due))
    app.view(ui.SNOOZE_CALLBACK)(tracked(on_snooze_submit))
    app.view(ui.NOT_MINE_CALLBACK)(tracked(on_not_mine))
    app.view(ui.WONT_DO_CALLBACK)(tracked(on_wont_do))
    app.action(SCHEDULE_MEETING)(tracked(on_schedule_meeting))
    app.view(meeting_ui.MEETING_CALLBACK)(tracked(on_meeting))


# --- buttons answered with one click ---------------------------------------------------------


async def on_done(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    await ack()
    await _apply(
        services_of(context).action_items, body, respond, ui.parse_item_value(action.get("value")), Answer("done")
    )


async def on_in_progress(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    await ack()
    await _apply(
        services_of(context).action_items,
        body,
        respond,
        ui.parse_item_value(action.get("value")),
        Answer("in_progress"),
    )


async def _apply(
    items: ActionItemService, body: dict[str, Any], respond: AsyncRespond, item_id: int | None, answer: Answer
) -> None:
    who = Actor.of(body)
    if item_id is None or not who.known:
        log.warning("action-item button without an item id, a user or a team")
        return
    try:
        await items.answer(who.team_id, item_id, who.user_id, answer)
    except (NotAllowed, AnswerError) as exc:
        await warn_privately(respond, str(exc))


# --- buttons that open a small form, checked first for who may ---------------------------------


async def on_snooze(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The length is chosen in the DM; a small form takes the optional reason."""
    await ack()
    selected = action.get("selected_option")
    parsed = ui.parse_snooze_value(selected.get("value") if isinstance(selected, dict) else None)
    if parsed is None:
        log.warning("snooze option without an item id and a length")
        return
    item_id, length = parsed
    build = partial(ui.snooze_modal, length=length)
    await _open_item_form(body, respond, client, context, item_id, build, retry="choose again")


# The buttons that need more than a click: each opens its small form, checked first for who may.
ITEM_FORMS: dict[str, Callable[[ActionItemView], dict[str, Any]]] = {
    ui.ITEM_CHANGE_DUE: lambda item: ui.change_due_modal(item, today=item.due),
    ui.ITEM_NOT_MINE: ui.not_mine_modal,
    ui.ITEM_WONT_DO: ui.wont_do_modal,
}


async def on_item_form_button(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    build = ITEM_FORMS.get(str(action.get("action_id")))
    item_id = ui.parse_item_value(action.get("value"))
    if build is None or item_id is None:
        return
    await _open_item_form(body, respond, client, context, item_id, build)


async def _open_item_form(
    body: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    item_id: int,
    build: Callable[[ActionItemView], dict[str, Any]],
    retry: str = "press the button again",
) -> None:
    """Open an item's small form for someone who may answer it; say why not otherwise."""
    who = Actor.of(body)
    try:
        item = await services_of(context).action_items.check_allowed(who.team_id, item_id, who.user_id)
        await client.views_open(trigger_id=body["trigger_id"], view=build(item))
    except (NotAllowed, AnswerError) as exc:
        await warn_privately(respond, str(exc))
    except SlackApiError as exc:
        await warn_privately(respond, answers.form_refused(error_code(exc), retry))


# --- the small forms' submissions ---------------------------------------------------------------


async def on_change_due(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
    items = services_of(context).action_items
    due = ui.read_change_due(view.get("state", {}).get("values", {}))
    # UTC's date is a day's grace either way; the service checks the owner's own date.
    errors = ui.change_due_errors(due, today=items.clock.now().date() - timedelta(days=1))
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await _submit(items, ack, body, view, Answer("change_due", due=due), ui.CHANGE_DUE_BLOCK)


async def on_snooze_submit(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
) -> None:
    try:
        length = json.loads(view.get("private_metadata") or "{}").get("length")
    except ValueError:
        length = None
    reason = ui.read_snooze(view.get("state", {}).get("values", {}))
    answer = Answer("snooze", snooze=length, note=reason)
    await _submit(services_of(context).action_items, ack, body, view, answer, ui.SNOOZE_REASON_BLOCK)


async def on_not_mine(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
    owner, note = ui.read_not_mine(view.get("state", {}).get("values", {}))
    answer = Answer("not_mine", new_owner=owner, note=note)
    await _submit(services_of(context).action_items, ack, body, view, answer, ui.NOT_MINE_OWNER_BLOCK)


async def on_wont_do(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext) -> None:
    reason = ui.read_wont_do(view.get("state", {}).get("values", {}))
    if not reason.strip():
        await ack(response_action="errors", errors={ui.WONT_DO_BLOCK: answers.SAY_WHY})
        return
    await _submit(services_of(context).action_items, ack, body, view, Answer("wont_do", note=reason), ui.WONT_DO_BLOCK)


async def _submit(
    items: ActionItemService, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], answer: Answer, block: str
) -> None:
    item_id = ui.read_item_id(view.get("private_metadata"))
    who = Actor.of(body)
    if item_id is None or not who.known:
        await ack()
        return
    try:
        # Fast checks first so errors land on the field; the rest happens after the ack.
        await items.check_allowed(who.team_id, item_id, who.user_id)
    except (NotAllowed, AnswerError) as exc:
        await ack(response_action="errors", errors={block: str(exc)})
        return
    await ack()
    try:
        await items.answer(who.team_id, item_id, who.user_id, answer)
    except (NotAllowed, AnswerError) as exc:
        log.warning("action-item answer refused after ack: %s", exc)


# --- the review meeting ---------------------------------------------------------------------------


async def on_schedule_meeting(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    incident_id = ui.parse_item_value(action.get("value"))
    if incident_id is None:
        return
    who = Actor.of(body)
    try:
        incident = await services_of(context).meetings.incident_summary(who.team_id, incident_id, who.user_id)
        await client.views_open(
            trigger_id=body["trigger_id"], view=meeting_ui.meeting_modal(incident, initial_attendees=[who.user_id])
        )
    except MeetingError as exc:
        await warn_privately(respond, str(exc))
    except SlackApiError as exc:
        await warn_privately(respond, answers.form_refused(error_code(exc)))


async def on_meeting(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    meetings = services_of(context).meetings
    incident_id = meeting_ui.read_incident_id(view.get("private_metadata"))
    day, at, attendees, location = meeting_ui.read_meeting(view.get("state", {}).get("values", {}))
    who = Actor.of(body)
    if not who.known:
        await ack()
        return
    if incident_id is None or day is None or at is None:
        await ack(response_action="errors", errors={meeting_ui.MEETING_DATE_BLOCK: answers.PICK_DATE_AND_TIME})
        return
    try:
        # Who may schedule it is checked before the ack, so a refusal shows on the form.
        await meetings.incident_summary(who.team_id, incident_id, who.user_id)
    except MeetingError as exc:
        await ack(response_action="errors", errors={meeting_ui.MEETING_DATE_BLOCK: str(exc)})
        return
    await ack()
    try:
        meeting = await meetings.schedule_meeting(
            team_id=who.team_id,
            incident_id=incident_id,
            user_id=who.user_id,
            day=day,
            at=at,
            attendees=attendees,
            location=location,
        )
    except MeetingError as exc:
        log.warning("meeting not scheduled: %s", exc)
        return
    if meeting.problem:  # the form is gone: tell the person in a DM
        try:
            await client.chat_postMessage(channel=who.user_id, text=answers.meeting_set_dm(meeting.problem))
        except SLACK_FAILURES as exc:
            log.warning("could not tell %s about the meeting announcement: %s", who.user_id, error_code(exc))
