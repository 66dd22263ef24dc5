"""Resolve to document: the post-mortem modal's life, revisions and sharing.

The rules live here; listeners only ack and call. Slack's 3-second clocks shape the order of
work: a modal is opened (with a placeholder) before anything slow, field errors and quality
warnings are computed without touching the database, and everything that writes happens
after the ack. A submission is stored before it is shared, so a failed post or upload loses
nothing: the revision stands and the person is told. The form's action-item rows are
stored by ActionItemService inside the submission's transaction; the card is IncidentService's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot import quality
from bot.access import AccessDenied, ChannelAccess
from bot.action_items import ActionItemService
from bot.clock import Clock
from bot.incidents import NO_INCIDENT_HERE, IncidentService
from bot.nudge_calendar import local_date
from bot.people import PeopleDirectory
from bot.postmortem_content import PostmortemContent, mark_edits, with_stored_items
from bot.postmortem_document import document_data, duration_text, mentioned_ids, render_markdown

if TYPE_CHECKING:
    from bot.nudges import NudgeService
    from bot.reconcile import ReconcileService
from bot.slack import SLACK_FAILURES, error_code
from bot.timeline import load_timeline
from bot.ui import postmortem_modal as modal
from bot.ui import postmortem_state as form_state
from bot.ui.summary import loading_modal, postmortem_summary
from bot.ui.text import escape, slack_date
from bot.views import ActionItemView, IncidentView, TimelineItem
from storage import directory
from storage.action_items import incident_action_items
from storage.db import SessionFactory
from storage.incidents import get_incident, latest_incident, team_incident
from storage.models import ACTIVE, DRAFT, IN_REVIEW, LIFECYCLE, PUBLISHED, RESOLVED, Incident, Postmortem
from storage.postmortems import (
    add_revision,
    create_postmortem,
    get_postmortem,
    removed_item_ids_of,
    revision_authors,
)
from storage.timeline import add_timeline_entry

log = logging.getLogger("postmortem_bot.postmortems")

# Budget for looking people up before a view_submission ack (Slack allows 3 s in all).
PEOPLE_LOOKUP_BUDGET_S = 1.2


class PostmortemError(Exception):
    """Something the person can fix; the message says what."""


@dataclass(frozen=True)
class SubmissionCheck:
    errors: dict[str, str]
    warnings: list[quality.QualityWarning]


@dataclass(frozen=True)
class Submitted:
    incident: Incident
    revision: int
    shared: bool  # posted and uploaded to the channel
    problem: str | None = None  # why sharing failed, for the submitter


def humanize(delta: timedelta) -> str:
    """A duration as people read it ("1 h 47 min"); one wording for modal and document."""
    return duration_text(max(0, int(delta.total_seconds()))) or "0 s"


class PostmortemService:
    def __init__(
        self,
        sessions: SessionFactory,
        client: AsyncWebClient,
        clock: Clock,
        people: PeopleDirectory,
        timeline_emojis: tuple[str, ...],
        nudges: NudgeService,
        access: ChannelAccess,
        reconcile: ReconcileService,
        incidents: IncidentService,
        action_items: ActionItemService,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.clock = clock
        self.people = people
        self.timeline_emojis = timeline_emojis
        self.nudges = nudges
        self.access = access
        self.reconcile = reconcile
        self.incidents = incidents  # the card's owner
        self.action_items = action_items  # the form's rows are action items

    # --- opening the modal -----------------------------------------------------------------

    async def open_modal(
        self, *, team_id: str, channel_id: str, user_id: str, trigger_id: str, resolve: bool
    ) -> Incident:
        """Open the post-mortem modal for the channel's incident, resolving it first if asked.

        The trigger id dies 3 s after the click, so a placeholder view is opened before any
        database work, then replaced by the real modal.
        """
        opened = await self.client.views_open(trigger_id=trigger_id, view=loading_modal())
        view_id = opened["view"]["id"]
        try:
            incident = await self._incident_for(team_id, channel_id)
            await self._check_access(incident.channel_id, user_id)
            if resolve and incident.status == ACTIVE:
                await self._sync_before_resolve(incident)
                incident = await self.resolve(incident, user_id)
            view = await self._modal_for(incident, user_id)
        except PostmortemError as exc:
            await self.client.views_update(view_id=view_id, view=loading_modal(problem=str(exc)))
            raise
        await self.client.views_update(view_id=view_id, view=view)
        return incident

    async def _sync_before_resolve(self, incident: Incident) -> None:
        """Repair what the bot missed before the timeline goes into the post-mortem. A sync
        Slack refuses is logged and resolving goes on: the timeline is as good as it was."""
        try:
            report = await self.reconcile.sync_incident(incident)
        except SLACK_FAILURES as exc:
            log.warning("sync before resolving incident %s failed: %s", incident.id, error_code(exc))
            return
        if report.repaired:
            log.info("sync before resolving incident %s: %s", incident.id, report.summary())

    async def _incident_for(self, team_id: str, channel_id: str) -> Incident:
        async with self.sessions() as session:
            incident = await latest_incident(session, channel_id, team_id)
        if incident is None:
            raise PostmortemError(NO_INCIDENT_HERE)
        return incident

    async def resolve(self, incident: Incident, user_id: str) -> Incident:
        """Mark the incident resolved (once) and log it on the timeline; the card follows."""
        now = self.clock.now()
        async with self.sessions.begin() as session:
            row = await get_incident(session, incident.id, lock=True)
            assert row is not None
            if row.status == ACTIVE:
                row.status = RESOLVED
                row.resolved_at = now
                await add_timeline_entry(
                    session,
                    team_id=row.team_id,
                    incident_id=row.id,
                    kind=LIFECYCLE,
                    occurred_at=now,
                    user_id=user_id,
                    text=f"Incident resolved after {humanize(now - row.started_at)}",
                )
            incident = row
        await self.incidents.refresh_card(incident)
        await self.nudges.plan_incident(incident.id)
        return incident

    async def _modal_for(self, incident: Incident, user_id: str, notice: str | None = None) -> dict[str, Any]:
        postmortem = await self._postmortem(incident)
        async with self.sessions() as session:
            stored = await self.action_items.form_rows(session, incident.id)
        content = with_stored_items(
            PostmortemContent.from_json(postmortem.draft), stored, postmortem.removed_item_ids or []
        )
        items = await load_timeline(self.sessions, incident, self.timeline_emojis)
        return modal.postmortem_modal(
            content,
            incident_id=incident.id,
            context_line=self._context_line(incident, items),
            revision=postmortem.view_revision,
            notice=notice,
        )

    async def _postmortem(self, incident: Incident) -> Postmortem:
        """The incident's post-mortem, created from what the bot knows on first use."""
        async with self.sessions() as session:
            found = await get_postmortem(session, incident.id)
        if found is not None:
            return found
        items = await load_timeline(self.sessions, incident, self.timeline_emojis)
        async with self.sessions.begin() as session:
            existing = await get_postmortem(session, incident.id)
            if existing is not None:  # someone else got here first
                return existing
            postmortem = await create_postmortem(
                session,
                team_id=incident.team_id,
                incident_id=incident.id,
                status=DRAFT,
                draft=self._prefill(incident, items).to_json(),
                updated_at=self.clock.now(),
            )
        await self.incidents.refresh_card(incident)  # "not started" becomes "draft"
        return postmortem

    def _prefill(self, incident: Incident, items: Sequence[TimelineItem]) -> PostmortemContent:
        """What the bot knows: title, severity, duration, and how long detection took."""
        content = PostmortemContent(title=incident.title, severity=incident.severity)
        if incident.resolved_at is not None:
            content.impact.duration = humanize(incident.resolved_at - incident.started_at)
        first = min((i.occurred_at for i in items), default=None)
        if first is not None and first < incident.started_at:
            content.detection_time = f"{humanize(incident.started_at - first)} from the first sign to the declaration"
        return content

    def _context_line(self, incident: Incident, items: Sequence[TimelineItem]) -> str:
        parts = []
        first = min((i.occurred_at for i in items), default=None)
        if first is not None and first < incident.started_at:
            parts.append(f"First sign {slack_date(first)}")
        parts.append(f"Declared {slack_date(incident.started_at)}")
        if incident.resolved_at is not None:
            parts.append(f"Resolved {slack_date(incident.resolved_at)}")
            parts.append(f"Duration {humanize(incident.resolved_at - incident.started_at)}")
        parts.append(f"{len(items)} timeline entries")
        return " · ".join(parts)

    # --- while the modal is open -----------------------------------------------------------

    async def save_draft(self, team_id: str, incident_id: int, content: PostmortemContent, user_id: str) -> None:
        """Keep what was typed (modal closed, or a row added or removed). Latest wins."""
        await self.authorized_incident(team_id, incident_id, user_id)
        async with self.sessions.begin() as session:
            postmortem = await self._locked(session, incident_id)
            postmortem.draft = mark_edits(content, await self.action_items.form_rows(session, incident_id)).to_json()
            postmortem.updated_by = user_id
            postmortem.updated_at = self.clock.now()
        incident = await self._incident(incident_id)
        await self.incidents.refresh_card(incident)

    async def change_rows(
        self,
        *,
        team_id: str,
        incident_id: int,
        view_id: str,
        content: PostmortemContent,
        user_id: str,
        remove_key: str | None,
    ) -> None:
        """Add an action-item row, or remove one, and redraw the modal from the stored draft."""
        try:
            await self.authorized_incident(team_id, incident_id, user_id)
        except PostmortemError as exc:
            # A modal's buttons carry no response_url: the answer goes into the modal itself.
            await self.client.views_update(view_id=view_id, view=loading_modal(problem=str(exc)))
            raise
        content = form_state.with_row_removed(content, remove_key) if remove_key else form_state.with_row_added(content)
        async with self.sessions.begin() as session:
            postmortem = await self._locked(session, incident_id)
            removed: list[int] = []
            if remove_key and remove_key.startswith("i") and remove_key[1:].isdigit():
                removed = [int(remove_key[1:])]
            postmortem.removed_item_ids = sorted(set(postmortem.removed_item_ids or []) | set(removed))
            postmortem.draft = mark_edits(content, await self.action_items.form_rows(session, incident_id)).to_json()
            postmortem.view_revision += 1
            postmortem.updated_by = user_id
            postmortem.updated_at = self.clock.now()
        incident = await self._incident(incident_id)
        await self.client.views_update(view_id=view_id, view=await self._modal_for(incident, user_id))

    # --- submitting ------------------------------------------------------------------------

    async def check_submission(
        self, team_id: str, incident_id: int, content: PostmortemContent, user_id: str, revision: int
    ) -> SubmissionCheck:
        """Field errors and quality warnings (before the ack); nothing is written, and only
        the incident and its action items are read.

        Whether this person may submit this incident's form at all is checked first: a
        refusal comes back as an error on the title, and nothing is written.
        """
        try:
            await self.authorized_incident(team_id, incident_id, user_id)
        except PostmortemError as exc:
            return SubmissionCheck(errors={modal.block_id("pm_title", revision): str(exc)}, warnings=[])
        # The quality checks see what the submission will keep: the form's rows and the
        # stored items it did not show (more than it holds, or added since it was opened).
        kept = await self._kept_content(incident_id, content)
        owners = {row.owner for row in kept.action_items if row.owner and not row.is_blank()}
        people = await self.people.many(owners | {user_id}, timeout=PEOPLE_LOOKUP_BUDGET_S)
        not_people = {uid: reason for uid in owners if (reason := people[uid].not_a_person_reason())}
        errors = form_state.field_errors(
            content,
            today=self._today_for(people[user_id].tz),
            severity=content.severity,
            not_people=not_people,
            revision=revision,
        )
        names = [n for p in people.values() if p.known for n in (p.name, p.real_name) if n]
        return SubmissionCheck(errors=errors, warnings=quality.review(kept, names))

    async def _kept_content(self, incident_id: int, content: PostmortemContent) -> PostmortemContent:
        """The form's rows with the stored items a submission keeps though the form lacks them."""
        async with self.sessions() as session:
            stored = await self.action_items.form_rows(session, incident_id)
            removed = await removed_item_ids_of(session, incident_id)
        return with_stored_items(mark_edits(content, stored), stored, removed)

    def _today_for(self, tz_name: str) -> date:
        return local_date(self.clock.now(), tz_name)

    async def stage_submission(self, team_id: str, incident_id: int, content: PostmortemContent, user_id: str) -> None:
        """Hold a submission that met quality warnings until its author confirms it."""
        await self.authorized_incident(team_id, incident_id, user_id)
        async with self.sessions.begin() as session:
            postmortem = await self._locked(session, incident_id)
            postmortem.draft = mark_edits(content, await self.action_items.form_rows(session, incident_id)).to_json()
            postmortem.pending_submitter = user_id
            postmortem.updated_by = user_id
            postmortem.updated_at = self.clock.now()

    async def submit(
        self, team_id: str, incident_id: int, user_id: str, content: PostmortemContent | None = None
    ) -> Submitted:
        """Store a revision and the action items, then share the document in the channel.

        `content` None means "the staged draft" (the author accepted the warnings).
        """
        await self.authorized_incident(team_id, incident_id, user_id)
        now = self.clock.now()
        async with self.sessions.begin() as session:
            postmortem = await self._locked(session, incident_id)
            stored = await self.action_items.form_rows(session, incident_id, lock=True)
            # The staged draft carries its edits; the form's rows are compared with the items.
            draft = PostmortemContent.from_json(postmortem.draft) if content is None else mark_edits(content, stored)
            content = with_stored_items(draft, stored, postmortem.removed_item_ids or [])
            incident = await get_incident(session, incident_id)
            assert incident is not None
            rows, to_plan = await self.action_items.store_form_rows(
                session, incident, content.action_items, postmortem.removed_item_ids or [], user_id
            )
            postmortem.removed_item_ids = []
            content.action_items = rows
            number = await add_revision(
                session,
                team_id=incident.team_id,
                postmortem_id=postmortem.id,
                author_id=user_id,
                content=content.to_json(),
                created_at=now,
            )
            postmortem.draft = content.to_json()
            postmortem.pending_submitter = None
            postmortem.updated_by = user_id
            postmortem.updated_at = now
            postmortem.submitted_at = now
            if postmortem.status == DRAFT:
                postmortem.status = IN_REVIEW
            postmortem.view_revision += 1
            # The document's own title and severity are the corrected ones.
            incident.title = content.title.strip()[:200] or incident.title
            incident.severity = content.severity
        await self.action_items.plan_reminders(to_plan)
        shared, problem = await self.share(incident_id, headline="Post-mortem submitted", by=user_id)
        return Submitted(incident=incident, revision=number, shared=shared, problem=problem)

    # --- sharing and publishing ------------------------------------------------------------

    async def document(self, incident: Incident) -> dict[str, Any]:
        return await load_document(self.sessions, incident, self.timeline_emojis, self.people, self.access)

    async def share(self, incident_id: int, *, headline: str, by: str) -> tuple[bool, str | None]:
        """Post the summary and upload the Markdown document to the incident channel.

        Slack failures are retried by the client (429, 5xx); what still fails is reported
        back and logged, and the stored revision is untouched.
        """
        incident = await self._incident(incident_id)
        data = await self.document(incident)
        problem = None
        summary_ts = file_id = None
        try:
            posted = await self.client.chat_postMessage(
                channel=incident.channel_id,
                **postmortem_summary(data, incident_id=incident.id, headline=headline, by=by),
            )
            summary_ts = posted["ts"]
            uploaded = await self.client.files_upload_v2(
                channel=incident.channel_id,
                thread_ts=summary_ts,
                content=render_markdown(data),
                filename=f"postmortem-{incident.channel_id}-{incident.id}.md",
                title=f"Post-mortem: {incident.title}"[:250],
            )
            files = uploaded.get("files") or [uploaded.get("file") or {}]
            file_id = (files[0] or {}).get("id")
        except SLACK_FAILURES as exc:  # an upload URL that failed raises SlackRequestError
            problem = error_code(exc)
            log.error("sharing the post-mortem of incident %s failed: %s", incident.id, problem)
        async with self.sessions.begin() as session:
            postmortem = await self._locked(session, incident.id)
            postmortem.summary_ts = summary_ts or postmortem.summary_ts
            postmortem.file_id = file_id or postmortem.file_id
        await self.incidents.refresh_card(incident)
        return problem is None, problem

    async def publish(self, team_id: str, channel_id: str, user_id: str) -> Incident:
        incident = await self._incident_for(team_id, channel_id)
        await self._check_access(incident.channel_id, user_id)
        async with self.sessions.begin() as session:
            postmortem = await get_postmortem(session, incident.id, lock=True)
            if postmortem is None or postmortem.submitted_at is None:
                raise PostmortemError("Nothing to publish yet: submit the post-mortem first (`/postmortem resolve`).")
            if postmortem.status == PUBLISHED:
                raise PostmortemError("This post-mortem is already published.")
            postmortem.status = PUBLISHED
            postmortem.published_at = self.clock.now()
            postmortem.updated_by = user_id
        shared, problem = await self.share(incident.id, headline="Post-mortem published", by=user_id)
        if not shared:
            raise PostmortemError(
                f"Published, but Slack refused the document ({problem}); "
                f"`postmortem-bot export --channel {channel_id}` has it."
            )
        return incident

    # --- shared bits -----------------------------------------------------------------------

    async def authorized_incident(self, team_id: str, incident_id: int, user_id: str) -> Incident:
        """The incident a form or button names by id, if it is this workspace's and `user_id`
        may act on it. Ids come from payloads (private_metadata, button values): never trust
        them further than the team they arrived with and the channel's membership."""
        async with self.sessions() as session:
            incident = await team_incident(session, team_id, incident_id)
        if incident is None:
            raise PostmortemError("That incident does not exist in this workspace. Nothing was changed.")
        await self._check_access(incident.channel_id, user_id)
        return incident

    async def _check_access(self, channel_id: str, user_id: str) -> None:
        """Called with no session open: it may ask Slack."""
        try:
            await self.access.require_member(channel_id, user_id)
        except AccessDenied as exc:
            raise PostmortemError(str(exc)) from exc

    async def _incident(self, incident_id: int) -> Incident:
        async with self.sessions() as session:
            incident = await get_incident(session, incident_id)
        if incident is None:
            raise PostmortemError("That incident no longer exists.")
        return incident

    async def _locked(self, session: AsyncSession, incident_id: int) -> Postmortem:
        postmortem = await get_postmortem(session, incident_id, lock=True)
        if postmortem is None:
            raise PostmortemError(
                "This post-mortem was not started yet: use the card's button or `/postmortem resolve`."
            )
        return postmortem


def metadata_incident_id(private_metadata: str | None) -> int:
    """The incident id the modal carries (the only thing it carries)."""
    try:
        value = json.loads(private_metadata or "{}")["incident_id"]
        return int(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise PostmortemError("This form is out of date: open the post-mortem again from the card.") from exc


def describe(submitted: Submitted) -> str:
    """The submitter's receipt."""
    if submitted.shared:
        return f"Post-mortem revision {submitted.revision} of *{escape(submitted.incident.title)}* stored and shared."
    return (
        f"Post-mortem revision {submitted.revision} is stored, but Slack refused to share it ({submitted.problem}). "
        f"Nothing is lost: `/postmortem publish` shares it again, and `postmortem-bot export --channel "
        f"{submitted.incident.channel_id}` prints it."
    )


async def load_document(
    sessions: SessionFactory,
    incident: Incident,
    emojis: tuple[str, ...],
    people: PeopleDirectory | None = None,
    access: ChannelAccess | None = None,
) -> dict[str, Any]:
    """The document data: timeline, content, action items, revision authors, names.

    People and channels are named as the database knows them. With `people` and `access`
    (the running bot), Slack is asked about whoever the database does not know yet; without
    (the export CLI), only the database is read, so an export works with Slack unreachable.
    """
    items = await load_timeline(sessions, incident, emojis)
    async with sessions() as session:
        postmortem = await get_postmortem(session, incident.id)
        actions = await incident_action_items(session, incident.id)
        authors = await revision_authors(session, postmortem.id) if postmortem is not None else []
        mentioned_users, mentioned_channels = mentioned_ids([i.text for i in items])
        user_ids = {i.user_id for i in items if i.user_id} | {a.owner_id for a in actions} | set(authors)
        user_ids |= mentioned_users | {incident.commander_id}
        channel_ids = mentioned_channels | {incident.channel_id}
        names = await directory.people_named(session, user_ids) if people is None else {}
        channels = await directory.channels_named(session, channel_ids)
    content = PostmortemContent.from_json(postmortem.draft) if postmortem is not None else None
    if people is not None:
        names = await people.names(user_ids)
    if access is not None:
        for channel_id in sorted(channel_ids - channels.keys()):
            name = await access.name(channel_id)
            if name:
                channels[channel_id] = name
    return document_data(
        IncidentView.from_row(incident),
        items,
        content=content,
        action_items=[ActionItemView.from_row(a, incident) for a in actions],
        postmortem_status=postmortem.status if postmortem is not None else None,
        authors=authors,
        user_names=names,
        channel_names=channels,
    )
