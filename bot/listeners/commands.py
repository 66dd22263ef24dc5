"""`/postmortem`: parse, ack at once, call one service, answer ephemerally."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import commands
from bot.access import AccessDenied
from bot.action_items import AnswerError
from bot.incidents import StartFailed
from bot.listeners.answers import answer_privately
from bot.payloads import slack_id
from bot.postmortems import PostmortemError
from bot.services import Services
from bot.slack import SLACK_FAILURES, error_code
from bot.timeline import NoIncident
from bot.ui.help import ephemeral, help_message
from bot.ui.stats import stats_message
from bot.ui.text import escape, mention, severity_label, slack_date
from bot.ui.timeline import entry_line, timeline_message

log = logging.getLogger("postmortem_bot.listeners.commands")

NO_INCIDENT = "There is no incident in this channel. Start one with `/postmortem start <title> --sev 1`."


def register(app: AsyncApp, services: Services) -> None:
    @app.command("/postmortem")
    async def postmortem(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        try:
            parsed = commands.parse(command.get("text", ""))
        except commands.UsageError as exc:
            await ack(**help_message(str(exc)))
            return
        if isinstance(parsed, commands.Help):
            await ack(**help_message(parsed.problem))
            return
        team_id, channel_id, user_id = (slack_id(command.get(k)) for k in ("team_id", "channel_id", "user_id"))
        if team_id is None or channel_id is None or user_id is None:
            log.warning("/postmortem without a well-formed team, channel or user id")
            await ack(**ephemeral(":warning: This command came without a valid workspace, channel or user; nothing was done."))
            return
        # Everything below may touch the database or Slack: answer Slack first.
        await ack()
        try:
            if isinstance(parsed, commands.Resolve):
                # The trigger id lives 3 s: the service opens the modal before anything else.
                answer = await _resolve(services, team_id, channel_id, user_id, command["trigger_id"])
            else:
                answer = await _run(services, parsed, team_id, channel_id, user_id)
        except AccessDenied as exc:
            answer = ephemeral(f":warning: {exc}")
        except SLACK_FAILURES as exc:
            log.warning("/postmortem %s failed on Slack: %s", type(parsed).__name__, error_code(exc))
            answer = ephemeral(f":warning: Slack refused a request ({error_code(exc)}). Nothing was lost; try again.")
        if answer is not None:
            await answer_privately(respond, answer)


async def _resolve(services: Services, team_id: str, channel_id: str, user_id: str, trigger_id: str) -> dict | None:
    try:
        await services.postmortems.open_modal(
            team_id=team_id, channel_id=channel_id, user_id=user_id, trigger_id=trigger_id, resolve=True
        )
    except PostmortemError as exc:
        return ephemeral(f":warning: {exc}")
    return None


async def _run(services: Services, parsed: commands.Command, team_id: str, channel_id: str, user_id: str) -> dict | None:
    if isinstance(parsed, commands.Start):
        try:
            outcome = await services.incidents.start(
                team_id=team_id, channel_id=channel_id, user_id=user_id, title=parsed.title, severity=parsed.severity
            )
        except StartFailed as exc:
            return ephemeral(f":warning: {exc}")
        incident = outcome.incident
        if not outcome.created:
            return ephemeral(
                f"An incident is already active in this channel: *{escape(incident.title)}* "
                f"({severity_label(incident.severity)}), declared by {mention(incident.commander_id)} "
                f"{slack_date(incident.started_at)}. `/postmortem timeline` shows its timeline."
            )
        return ephemeral(f":warning: {outcome.warning}") if outcome.warning else None

    if isinstance(parsed, commands.Note):
        try:
            item = await services.timeline.add_note(team_id, channel_id, user_id, parsed.text, parsed.at)
        except NoIncident:
            return ephemeral(NO_INCIDENT)
        return ephemeral(f"Added to the timeline: {entry_line(item)}")

    if isinstance(parsed, commands.Publish):
        try:
            await services.postmortems.publish(team_id, channel_id, user_id)
        except PostmortemError as exc:
            return ephemeral(f":warning: {exc}")
        return None

    if isinstance(parsed, commands.AddActionItem):
        try:
            item = await services.postmortems.add_action_item(
                team_id=team_id, channel_id=channel_id, user_id=user_id, owner=parsed.owner, due=parsed.due, title=parsed.title
            )
        except PostmortemError as exc:
            return ephemeral(f":warning: {exc}")
        return ephemeral(f"Action item added: *{escape(item.title)}*, owner {mention(item.owner_id)}, due {item.due.isoformat()}.")

    if isinstance(parsed, commands.Meeting):
        incident = await services.timeline.readable_incident(team_id, channel_id, user_id)
        if incident is None:
            return ephemeral(NO_INCIDENT)
        try:
            meeting = await services.action_items.schedule_meeting(
                team_id=team_id,
                incident_id=incident.id,
                user_id=user_id,
                day=parsed.day,
                at=parsed.at,
                attendees=list(parsed.attendees) or [user_id],
            )
        except AnswerError as exc:
            return ephemeral(f":warning: {exc}")
        if meeting.problem:
            return ephemeral(f":warning: Review meeting set for {slack_date(meeting.at)}. {meeting.problem}")
        return ephemeral(f"Review meeting set for {slack_date(meeting.at)}; the agenda comes 24 h before.")

    if isinstance(parsed, commands.Stats):
        return stats_message(await services.stats.for_team(team_id, parsed.days))

    if isinstance(parsed, commands.Sync):
        try:
            report = await services.reconcile.sync_channel(team_id, channel_id)
        except NoIncident:
            return ephemeral(NO_INCIDENT)
        return ephemeral(escape(report.summary()))

    if isinstance(parsed, commands.ShowTimeline):
        incident = await services.timeline.readable_incident(team_id, channel_id, user_id)
        if incident is None:
            return ephemeral(NO_INCIDENT)
        return timeline_message(incident, await services.timeline.items(incident))
    raise AssertionError(f"unhandled command {parsed!r}")

