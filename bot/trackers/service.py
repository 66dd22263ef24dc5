"""Tickets for action items, kept in step with the trackers both ways.

TicketService owns the rules. Work owed to a tracker is rows (`ticket_jobs`, like nudges):
a "create" makes an item's ticket, a "sync" brings item and ticket into agreement (both
ways, by `sync.decide`). Both are claimed, done once, and retried with backoff or the
tracker's Retry-After. A create looks for the ticket by its marker before making one, so a
5xx after the create, a timeout, a second replica or a SIGKILL between create and storing
the key never makes a second ticket. Webhooks and the sweep's pull only owe syncs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.metrics import TRACKER_SYNC_LAG_SECONDS
from bot.nudges import NudgeService, restart_item_nudges
from bot.slack import error_code
from bot.trackers.base import (
    DONE,
    OPEN,
    WONT_DO,
    TicketGone,
    TicketSpec,
    TicketState,
    Tracker,
    TrackerError,
    TrackerRefused,
    TrackerUnavailable,
    marker_of,
)
from bot.trackers.sync import Agreed, decide, local_status
from bot.ui import tickets as ui
from bot.views import ActionItemView
from storage.action_items import get_action_item
from storage.db import SessionFactory
from storage.incidents import active_incident, get_incident, latest_incident
from storage.models import TICKET_CREATE, TICKET_PUSH, ActionItem, Incident, TicketJob
from storage.postmortems import get_postmortem, summary_ts_of
from storage.tickets import (
    choose_tracker,
    claim_ticket_jobs,
    fail_ticket_job,
    finish_ticket_job,
    first_notice,
    item_by_ticket,
    items_without_ticket,
    move_pull_cursor,
    pull_cursor,
    put_ticket_jobs,
    release_stale_ticket_claims,
    retry_ticket_job,
    store_ticket,
    tracker_choice,
)

log = logging.getLogger("postmortem_bot.trackers")

TRACKER_NAMES = {"jira": "Jira", "linear": "Linear"}
CLAIM_LEASE = timedelta(minutes=5)
BATCH = 20
MAX_BACKOFF = timedelta(hours=1)
REFUSED_BACKOFF = timedelta(hours=1)
FIRST_PULL = timedelta(days=1)
PULL_OVERLAP = timedelta(minutes=1)
WEBHOOK_MAX_AGE = timedelta(minutes=1)
# How long a submission waits for its tickets before sharing the document without them.
INLINE_BUDGET_S = 15.0


def backoff(attempts: int) -> timedelta:
    return min(MAX_BACKOFF, timedelta(seconds=30 * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Where:
    tracker: str
    project: str


class CommandError(Exception):
    """`/postmortem tracker` cannot do that; the message says why."""


async def owe_tickets(session: AsyncSession, team_id: str, item_ids: list[int], now: datetime) -> None:
    """In the caller's transaction: these items need their ticket (made by the next run)."""
    if item_ids:
        await put_ticket_jobs(session, team_id=team_id, item_ids=item_ids, kind=TICKET_CREATE, now=now)


async def owe_sync(session: AsyncSession, team_id: str, item_ids: list[int], now: datetime) -> None:
    """In the caller's transaction: these items and their tickets must be brought in step."""
    if item_ids:
        await put_ticket_jobs(session, team_id=team_id, item_ids=item_ids, kind=TICKET_PUSH, now=now)


class TicketService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        nudges: NudgeService,
        trackers: Mapping[str, Tracker],
        projects: Mapping[str, str],
        secrets: Mapping[str, str],
        worker_id: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.nudges = nudges
        self.trackers = dict(trackers)
        self.projects = dict(projects)  # default project / team key per tracker
        self.secrets = dict(secrets)  # webhook secrets
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self._running: set[asyncio.Task[Any]] = set()
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.trackers)

    # --- which tracker ------------------------------------------------------------------------

    def default(self) -> Where | None:
        """The one tracker configured with a project, or none."""
        usable = [Where(name, self.projects[name]) for name in self.trackers if self.projects.get(name)]
        return usable[0] if len(usable) == 1 else None

    async def where(self, session: AsyncSession, team_id: str, channel_id: str) -> Where | None:
        choice = await tracker_choice(session, team_id, channel_id)
        if choice is None:
            return self.default()
        if choice.tracker not in self.trackers or not choice.project:
            return None
        return Where(choice.tracker, choice.project)

    async def describe(self, team_id: str, channel_id: str) -> str | None:
        """ "Jira OPS", for the card; None without a tracker."""
        async with self.sessions() as session:
            where = await self.where(session, team_id, channel_id)
        return f"{TRACKER_NAMES.get(where.tracker, where.tracker)} {where.project}" if where else None

    async def choose(self, team_id: str, channel_id: str, user_id: str, args: str) -> str:
        """`/postmortem tracker jira KEY | linear KEY | none`, by the commander."""
        words = args.split()
        if (
            not words
            or words[0].lower() not in ("jira", "linear", "none")
            or (words[0].lower() != "none") != (len(words) == 2)
        ):
            raise CommandError("Usage: `/postmortem tracker jira KEY | linear KEY | none`.")
        name = words[0].lower()
        async with self.sessions() as session:
            incident = await active_incident(session, team_id, channel_id) or await latest_incident(
                session, channel_id, team_id
            )
        if incident is None:
            raise CommandError("There is no incident in this channel: `/postmortem start` one first.")
        if user_id != incident.commander_id:
            raise CommandError(f"Only the incident commander (<@{incident.commander_id}>) can choose the tracker.")
        if name != "none" and name not in self.trackers:
            env = "JIRA_URL, JIRA_EMAIL and JIRA_API_TOKEN" if name == "jira" else "LINEAR_API_KEY"
            raise CommandError(f"{TRACKER_NAMES[name]} is not set up for this bot: its operator sets {env}.")
        project = words[1].upper() if name != "none" else None
        if project is not None and not project.replace("_", "").isalnum():
            raise CommandError(f"{words[1]!r} is not a project or team key (letters and digits, e.g. OPS).")
        async with self.sessions.begin() as session:
            await choose_tracker(
                session,
                team_id=team_id,
                channel_id=channel_id,
                tracker=name,
                project=project,
                by=user_id,
                at=self.clock.now(),
            )
            if name != "none":
                submitted = await get_postmortem(session, incident.id)
                if submitted is not None and submitted.submitted_at is not None:
                    await owe_tickets(
                        session, team_id, await items_without_ticket(session, incident.id), self.clock.now()
                    )
        self.kick()
        if name == "none":
            return "This channel's action items get no tickets from now on."
        return f"This channel's action items get tickets in {TRACKER_NAMES[name]} {project}."

    def key_of_url(self, url: str) -> tuple[str, str] | None:
        """(tracker, key) of a ticket link typed in the form, if it is one of ours."""
        for name, tracker in self.trackers.items():
            key = tracker.key_of_url(url)
            if key:
                return name, key
        return None

    async def submitted(self, session: AsyncSession, incident_id: int) -> bool:
        postmortem = await get_postmortem(session, incident_id)
        return postmortem is not None and postmortem.submitted_at is not None

    # --- running the work owed ----------------------------------------------------------------

    def kick(self) -> None:
        """Run what is owed soon, in the background (the sweep runs it too)."""
        if not self.enabled:
            return
        task = asyncio.create_task(self._run_quietly())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_quietly(self) -> None:
        try:
            await self.run_due(self.clock.now())
        except Exception:
            log.exception("ticket work failed; the sweep tries again")

    async def run_now(self) -> None:
        """Run what is owed, waiting at most INLINE_BUDGET_S (a submission, before it shares)."""
        if not self.enabled:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._run_quietly()), INLINE_BUDGET_S)
        except TimeoutError:
            log.warning("tickets still being made after %ss; the document is shared without them", INLINE_BUDGET_S)

    async def sync(self, now: datetime | None = None) -> list[str]:
        """The sweep's share: pull what changed in each tracker, then do the work owed."""
        now = now or self.clock.now()
        if not self.enabled:
            return []
        lines = []
        for name, tracker in self.trackers.items():
            lines += await self._pull(name, tracker, now)
        return lines + await self.run_due(now)

    async def run_due(self, now: datetime) -> list[str]:
        async with self._lock:  # one runner per process; replicas share rows by their claims
            async with self.sessions.begin() as session:
                await release_stale_ticket_claims(session, now - CLAIM_LEASE)
            lines: list[str] = []
            while True:
                async with self.sessions.begin() as session:
                    jobs = await claim_ticket_jobs(session, now, BATCH, self.worker_id)
                for job in jobs:
                    lines.append(await self._work(job, now))
                if len(jobs) < BATCH:
                    return lines

    async def _work(self, job: TicketJob, now: datetime) -> str:
        label = f"ticket {job.kind} action_item:{job.item_id}"
        try:
            if job.kind == TICKET_CREATE:
                done = await self._create(job.item_id, now)
            else:
                done = await self._sync_item(job.item_id, now)
        except TrackerUnavailable as exc:
            wait = max(backoff(job.attempts), timedelta(seconds=exc.retry_after or 0))
            await self._retry(job, now + wait, str(exc))
            return f"retry {label} ({exc})"
        except TicketGone as exc:
            await self._tell_commander(job.item_id, f"gone:{job.item_id}", ui.ticket_gone, str(exc))
            async with self.sessions.begin() as session:
                await fail_ticket_job(session, job.id, str(exc))
            return f"failed {label} ({exc})"
        except TrackerRefused as exc:
            await self._tell_commander(job.item_id, f"refused:{exc}", ui.tracker_refused, str(exc))
            await self._retry(job, now + REFUSED_BACKOFF, str(exc))
            return f"retry {label} ({exc})"
        except Exception as exc:  # never let one item stop the others
            log.exception("%s failed", label)
            await self._retry(job, now + backoff(job.attempts), type(exc).__name__)
            return f"retry {label} ({type(exc).__name__})"
        async with self.sessions.begin() as session:
            await finish_ticket_job(session, job.id, job.generation)
        return f"{done} {label}"

    async def _retry(self, job: TicketJob, when: datetime, error: str) -> None:
        async with self.sessions.begin() as session:
            await retry_ticket_job(session, job.id, when, error)

    # --- creating -----------------------------------------------------------------------------

    async def _create(self, item_id: int, now: datetime) -> str:
        async with self.sessions() as session:
            item = await get_action_item(session, item_id)
            incident = await get_incident(session, item.incident_id) if item else None
            if item is None or incident is None:
                return "skipped"
            where = await self.where(session, incident.team_id, incident.channel_id)
            postmortem = await get_postmortem(session, incident.id)
            summary_ts = await summary_ts_of(session, incident.id)
        if item.ticket_key or item.ticket_url or where is None:
            return "skipped"  # it has one (made, or typed in the form), or the channel wants none
        tracker = self.trackers[where.tracker]
        marker = marker_of(incident.team_id, item.id)
        state = await tracker.find_by_marker(marker, where.project)  # an earlier attempt's, if any
        made = "found"
        if state is None:
            email = await self._email(item.owner_id)
            assignee = await tracker.user_by_email(email) if email else None
            draft = postmortem.draft if postmortem is not None else {}
            spec = TicketSpec(
                marker=marker,
                project=where.project,
                title=item.title,
                # The summary, once shared; the incident's card before (tickets are made first,
                # so that the summary can name them).
                summary_url=await self._permalink(incident.channel_id, summary_ts or incident.card_ts),
                incident=incident.title,
                root_cause=str((draft or {}).get("root_cause") or ""),
                due=item.due,
                priority=item.priority,
                assignee=assignee,
            )
            state = await tracker.create(spec)
            made = "created"
            if assignee is None:
                await self._tell_commander(
                    item.id,
                    f"unassigned:{item.id}",
                    ui.owner_not_found,
                    _tracker_title(where.tracker),
                    state.key,
                    email,
                )
        async with self.sessions.begin() as session:
            row = await get_action_item(session, item_id, lock=True)
            if row is None or row.ticket_key:
                return "skipped"
            agreed = Agreed(status=state.status, due=state.due, owner=row.owner_id, assignee=state.assignee)
            await store_ticket(
                session,
                item_id,
                tracker=where.tracker,
                key=state.key,
                ref=state.ref,
                url=state.url,
                synced=agreed.to_json(),
            )
            if local_status(row.status) != state.status or row.due != state.due or row.owner_id != item.owner_id:
                await owe_sync(session, row.team_id, [row.id], now)  # changed while it was being made
        await self._redraw_dm(item_id, None)
        return made

    async def _email(self, user_id: str) -> str | None:
        try:
            answer = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("cannot read %s's email from Slack: %s", user_id, error_code(exc))
            return None
        email = ((answer.get("user") or {}).get("profile") or {}).get("email")
        return str(email) if email else None

    async def _permalink(self, channel: str, ts: str | None) -> str | None:
        if not ts:
            return None
        try:
            answer = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError:
            return None
        link = answer.get("permalink")
        return str(link) if link else None

    # --- both ways ----------------------------------------------------------------------------

    async def _sync_item(self, item_id: int, now: datetime, state: TicketState | None = None) -> str:
        async with self.sessions() as session:
            item = await get_action_item(session, item_id)
            incident = await get_incident(session, item.incident_id) if item else None
            where = await self.where(session, incident.team_id, incident.channel_id) if incident else None
        if item is None or incident is None or not item.ticket_key or item.ticket_tracker not in self.trackers:
            return "skipped"
        tracker = self.trackers[item.ticket_tracker]
        project = where.project if where and where.tracker == item.ticket_tracker else item.ticket_key.split("-")[0]
        ref = item.ticket_ref or item.ticket_key
        state = state or await tracker.get(ref)
        agreed = Agreed.from_json(item.ticket_synced) or Agreed(state.status, state.due, item.owner_id, state.assignee)
        decision = decide(
            agreed,
            status=item.status,
            due=item.due,
            owner=item.owner_id,
            local_at=item.updated_at,
            remote_status=state.status,
            remote_due=state.due,
            remote_assignee=state.assignee,
            remote_at=state.updated_at,
        )
        if not decision.to_local and not decision.to_remote:
            # Both sides agree; if they reached it separately (both marked it done), that is
            # the new agreed state, so a later reopening on one side is seen as a change.
            current = Agreed(local_status(item.status), item.due, item.owner_id, state.assignee)
            if current != agreed:
                async with self.sessions.begin() as session:
                    row = await get_action_item(session, item_id, lock=True)
                    if row is not None and row.updated_at == item.updated_at:
                        row.ticket_synced = current.to_json()
            return "in step"
        # Slack's side to the tracker.
        assignee = state.assignee
        if "status" in decision.to_remote:
            await tracker.set_status(ref, project, decision.to_remote["status"])
        if "due" in decision.to_remote or "owner" in decision.to_remote:
            if "owner" in decision.to_remote:
                email = await self._email(item.owner_id)
                assignee = await tracker.user_by_email(email) if email else None
            due = item.due if "due" in decision.to_remote else state.due
            await tracker.update(ref, due=due, assignee=assignee)
        # The tracker's side to Slack.
        new_owner = None
        if "owner" in decision.to_local:
            new_owner = await self._slack_user(state.assignee_email)
        async with self.sessions.begin() as session:
            row = await get_action_item(session, item_id, lock=True)
            if row is None:
                return "skipped"
            changed = False
            status = decision.to_local.get("status")
            if status == DONE and row.status != "done":
                row.status, changed = "done", True
            elif status == WONT_DO and row.status != "wont_do":
                row.status, changed = "wont_do", True
                row.status_note = row.status_note or f"Canceled in {_tracker_title(item.ticket_tracker)}"
            elif status == OPEN and row.status in ("done", "wont_do"):
                row.status, changed = "open", True
            if "due" in decision.to_local and decision.to_local["due"] and row.due != decision.to_local["due"]:
                row.due, row.snoozed_until, changed = decision.to_local["due"], None, True
            if new_owner and new_owner != row.owner_id:
                row.owner_id, changed = new_owner, True
                await restart_item_nudges(session, item_id)
            if changed:
                row.updated_at = now
            row.ticket_synced = Agreed(
                status=local_status(row.status), due=row.due, owner=row.owner_id, assignee=assignee
            ).to_json()
            if "owner" in decision.to_local and not new_owner:
                row.ticket_synced = dict(row.ticket_synced, assignee=state.assignee)
        if decision.to_local:
            await self.nudges.plan_item(item_id)  # reminders stop (done) or start again (reopened)
            await self._redraw_dm(item_id, _tracker_title(item.ticket_tracker))
        if decision.conflicts:
            await self._note_conflicts(item_id, decision.conflicts, _tracker_title(item.ticket_tracker))
        return "synced"

    async def _slack_user(self, email: str | None) -> str | None:
        if not email:
            return None
        try:
            answer = await self.client.users_lookupByEmail(email=email)
        except SlackApiError:
            return None
        user = answer.get("user") or {}
        return None if user.get("is_bot") or user.get("deleted") else user.get("id")

    async def _pull(self, name: str, tracker: Tracker, now: datetime) -> list[str]:
        """What changed in the tracker since the last pull (webhooks get lost)."""
        async with self.sessions() as session:
            since = await pull_cursor(session, name) or now - FIRST_PULL
        TRACKER_SYNC_LAG_SECONDS.labels(tracker=name).set(max(0.0, (now - since).total_seconds()))
        owed: list[int] = []
        try:
            async for state in tracker.changed_since(since, now):
                async with self.sessions.begin() as session:
                    item = await item_by_ticket(session, name, state.ref) or await item_by_ticket(
                        session, name, state.key
                    )
                    if item is not None:
                        await owe_sync(session, item.team_id, [item.id], now)
                        owed.append(item.id)
        except TrackerError as exc:
            log.warning("could not pull %s's changes (%s); the next sweep tries again", name, exc)
            return [f"retry pull {name} ({exc})"]
        async with self.sessions.begin() as session:
            await move_pull_cursor(session, name, now - PULL_OVERLAP)
        TRACKER_SYNC_LAG_SECONDS.labels(tracker=name).set(PULL_OVERLAP.total_seconds())
        return [f"pulled {name}: {len(owed)} changed"] if owed else []

    # --- webhooks -----------------------------------------------------------------------------

    async def webhook(self, name: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str]:
        """A tracker's webhook: (HTTP status, reason). Only a signed, fresh, well-formed
        delivery changes anything; it owes a sync of the item it names."""
        secret = self.secrets.get(name)
        if name not in self.trackers or not secret:
            return 404, f"{TRACKER_NAMES.get(name, name)} webhooks are not set up"
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        given = headers.get("X-Hub-Signature", "") if name == "jira" else headers.get("Linear-Signature", "")
        expected = f"sha256={digest}" if name == "jira" else digest
        if not given or not hmac.compare_digest(given.strip().lower(), expected):
            return 401, "bad or missing signature"
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "body is not JSON"
        if not isinstance(payload, dict):
            return 400, "body is not a JSON object"
        now = self.clock.now()
        if name == "linear":
            stamp = payload.get("webhookTimestamp")
            if not isinstance(stamp, (int, float)) or isinstance(stamp, bool):
                return 401, "webhookTimestamp missing"
            sent = datetime.fromtimestamp(stamp / 1000, tz=now.tzinfo)
            if abs(now - sent) > WEBHOOK_MAX_AGE:
                return 401, "webhookTimestamp is more than a minute away"
            data = payload.get("data")
            if payload.get("type") != "Issue":
                return 200, "not an issue: ignored"
            refs = [data.get("id"), data.get("identifier")] if isinstance(data, dict) else []
            deleted = payload.get("action") == "remove"
        else:
            issue = payload.get("issue")
            if not isinstance(issue, dict):
                return 400, "no issue in the delivery"
            refs = [issue.get("id"), issue.get("key")]
            deleted = payload.get("webhookEvent") == "jira:issue_deleted"
        ids = [str(r) for r in refs if isinstance(r, (str, int)) and not isinstance(r, bool)]
        if not ids:
            return 400, "no issue id in the delivery"
        async with self.sessions.begin() as session:
            item = None
            for ref in ids:
                item = item or await item_by_ticket(session, name, ref)
            if item is not None and not deleted:
                await owe_sync(session, item.team_id, [item.id], now)
        if item is None:
            return 200, "not one of ours: ignored"
        if deleted:
            await self._tell_commander(item.id, f"gone:{item.id}", ui.ticket_gone, f"{item.ticket_key} was deleted")
            return 200, "deleted: the commander is told"
        self.kick()
        return 200, "ok"

    # --- telling people -------------------------------------------------------------------------

    async def _tell_commander(self, item_id: int, key: str, build: Any, *args: Any) -> None:
        """Tell the item's commander about a problem, once per problem."""
        async with self.sessions() as session:
            item = await get_action_item(session, item_id)
            incident = await get_incident(session, item.incident_id) if item else None
        if item is None or incident is None:
            return
        async with self.sessions.begin() as session:
            new = await first_notice(session, key, incident.commander_id, self.clock.now())
        if not new:
            return
        view = ActionItemView.from_row(item, incident)
        try:
            await self.client.chat_postMessage(channel=incident.commander_id, **build(view, *args))
        except SlackApiError as exc:
            log.warning("could not tell the commander about a tracker problem: %s", error_code(exc))

    async def _redraw_dm(self, item_id: int, tracker: str | None) -> None:
        """The item's DM, updated in place with its ticket and status."""
        item, incident = await self._item(item_id)
        if item is None or incident is None or not (item.dm_channel and item.dm_ts):
            return
        try:
            await self.client.chat_update(
                channel=item.dm_channel, ts=item.dm_ts, **ui.item_dm(ActionItemView.from_row(item, incident), tracker)
            )
        except SlackApiError as exc:
            log.warning("could not update an action item's DM: %s", error_code(exc))

    async def _note_conflicts(self, item_id: int, conflicts: list[tuple[str, str]], tracker: str) -> None:
        item, incident = await self._item(item_id)
        if item is None or incident is None or not (item.dm_channel and item.dm_ts):
            return
        try:
            await self.client.chat_postMessage(
                channel=item.dm_channel,
                thread_ts=item.dm_ts,
                **ui.conflict_note(ActionItemView.from_row(item, incident), conflicts, tracker),
            )
        except SlackApiError as exc:
            log.warning("could not note a tracker conflict: %s", error_code(exc))

    async def _item(self, item_id: int) -> tuple[ActionItem | None, Incident | None]:
        async with self.sessions() as session:
            item = await get_action_item(session, item_id)
            incident = await get_incident(session, item.incident_id) if item else None
        return item, incident

    async def close(self) -> None:
        for task in list(self._running):
            try:
                await asyncio.wait_for(task, 10)
            except Exception:
                log.warning("ticket work still running at shutdown; the sweep finishes it")
        for tracker in self.trackers.values():
            await tracker.close()


def _tracker_title(name: str | None) -> str:
    return TRACKER_NAMES.get(name or "", name or "the tracker")
