"""`/postmortem`: parse, ack at once, call one service, answer ephemerally."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond

from bot import command_parser
from bot.access import AccessDenied
from bot.action_items import AnswerError
from bot.incidents import StartFailed
from bot.listeners.answers import answer_privately
from bot.listeners.context import services_of
from bot.listeners.running import tracked
from bot.meetings import MeetingError
from bot.payloads import slack_id
from bot.postmortems import PostmortemError
from bot.services import Services
from bot.slack import SLACK_FAILURES, error_code
from bot.stats import Quarter
from bot.timeline import NoIncident
from bot.trackers.service import CommandError as TrackerCommandError
from bot.ui import answers
from bot.ui.help import help_message
from bot.ui.review import review_message
from bot.ui.stats import stats_message
from bot.ui.timeline import timeline_message

log = logging.getLogger("postmortem_bot.listeners.commands")


def register(app: AsyncApp) -> None:
    app.command("/postmortem")(tracked(on_postmortem_command))


async def on_postmortem_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
) -> None:
    try:
        parsed = command_parser.parse(command.get("text", ""))
    except command_parser.UsageError as exc:
        await ack(**help_message(str(exc)))
        return
    if isinstance(parsed, command_parser.Help):
        await ack(**help_message(parsed.problem))
        return
    team_id, channel_id, user_id = (slack_id(command.get(k)) for k in ("team_id", "channel_id", "user_id"))
    if team_id is None or channel_id is None or user_id is None:
        log.warning("/postmortem without a well-formed team, channel or user id")
        await ack(**answers.malformed_command())
        return
    # Everything below may touch the database or Slack: answer Slack first.
    await ack()
    services = services_of(context)
    try:
        if isinstance(parsed, command_parser.Resolve):
            # The trigger id lives 3 s: the service opens the modal before anything else.
            answer = await _resolve(services, team_id, channel_id, user_id, command["trigger_id"])
        else:
            answer = await _run(services, parsed, team_id, channel_id, user_id)
    except AccessDenied as exc:
        answer = answers.warning(str(exc))
    except SLACK_FAILURES as exc:
        log.warning("/postmortem %s failed on Slack: %s", type(parsed).__name__, error_code(exc))
        answer = answers.slack_refused(error_code(exc))
    if answer is not None:
        await answer_privately(respond, answer)


async def _resolve(
    services: Services, team_id: str, channel_id: str, user_id: str, trigger_id: str
) -> dict[str, Any] | None:
    try:
        await services.postmortems.open_modal(
            team_id=team_id, channel_id=channel_id, user_id=user_id, trigger_id=trigger_id, resolve=True
        )
    except PostmortemError as exc:
        return answers.warning(str(exc))
    return None


async def _run(
    services: Services, parsed: command_parser.Command, team_id: str, channel_id: str, user_id: str
) -> dict[str, Any] | None:
    if isinstance(parsed, command_parser.Start):
        try:
            outcome = await services.incidents.start(
                team_id=team_id, channel_id=channel_id, user_id=user_id, title=parsed.title, severity=parsed.severity
            )
        except StartFailed as exc:
            return answers.warning(str(exc))
        if not outcome.created:
            active = outcome.incident
            return answers.already_active(active.title, active.severity, active.commander_id, active.started_at)
        return answers.warning(outcome.warning) if outcome.warning else None

    if isinstance(parsed, command_parser.Note):
        try:
            item = await services.timeline.add_note(team_id, channel_id, user_id, parsed.text, parsed.at)
        except NoIncident:
            return answers.no_incident()
        return answers.note_added(item)

    if isinstance(parsed, command_parser.Publish):
        try:
            await services.postmortems.publish(team_id, channel_id, user_id)
        except PostmortemError as exc:
            return answers.warning(str(exc))
        return None

    if isinstance(parsed, command_parser.AddActionItem):
        try:
            action_item = await services.action_items.add_action_item(
                team_id=team_id,
                channel_id=channel_id,
                user_id=user_id,
                owner=parsed.owner,
                due=parsed.due,
                title=parsed.title,
            )
        except AnswerError as exc:
            return answers.warning(str(exc))
        return answers.action_item_added(action_item.title, action_item.owner_id, action_item.due)

    if isinstance(parsed, command_parser.Meeting):
        incident = await services.timeline.readable_incident(team_id, channel_id, user_id)
        if incident is None:
            return answers.no_incident()
        try:
            meeting = await services.meetings.schedule_meeting(
                team_id=team_id,
                incident_id=incident.id,
                user_id=user_id,
                day=parsed.day,
                at=parsed.at,
                attendees=list(parsed.attendees) or [user_id],
            )
        except MeetingError as exc:
            return answers.warning(str(exc))
        return answers.meeting_set(meeting.at, meeting.problem)

    if isinstance(parsed, command_parser.ChooseTracker):
        try:
            said = await services.trackers.choose(team_id, channel_id, user_id, parsed.args)
        except TrackerCommandError as exc:
            return answers.warning(str(exc))
        await services.incidents.refresh_channel_card(team_id, channel_id)  # the card says where tickets go
        return answers.tracker_chosen(said)

    if isinstance(parsed, command_parser.Stats):
        return stats_message(await services.stats.for_team(team_id, parsed.days))

    if isinstance(parsed, command_parser.Review):
        quarter = Quarter.parse(parsed.quarter) if parsed.quarter else Quarter.of(services.review.clock.now())
        assert quarter is not None  # the parser checked it
        return review_message(await services.review.review(team_id, quarter), private=True)

    if isinstance(parsed, command_parser.Sync):
        try:
            report = await services.reconcile.sync_channel(team_id, channel_id)
        except NoIncident:
            return answers.no_incident()
        return answers.sync_report(report.summary())

    if isinstance(parsed, command_parser.ShowTimeline):
        incident = await services.timeline.readable_incident(team_id, channel_id, user_id)
        if incident is None:
            return answers.no_incident()
        return timeline_message(incident, await services.timeline.items(incident))
    raise AssertionError(f"unhandled command {parsed!r}")
