"""Linear's GraphQL API: the API key in Authorization; Markdown descriptions.

A new issue gets an id the bot chooses, derived from the action item's marker: creating it
twice fails instead of duplicating, and `issue(id:)` finds an attempt whose answer was lost.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.trackers.base import (
    DONE,
    LINEAR_PRIORITIES,
    OPEN,
    WONT_DO,
    TicketGone,
    TicketSpec,
    TicketState,
    TrackerRefused,
    TrackerUnavailable,
)
from bot.trackers.http import TrackerHTTP, refusal, retry_after

DEFAULT_URL = "https://api.linear.app/graphql"
LABEL = "postmortem"
PAGE = 50
# Every ticket id the bot chooses is a UUID in this namespace, named by the item's marker.
NAMESPACE = uuid.UUID("5b0f5c0e-8f0e-4d5e-9a53-2a1f1e0b7d11")
FIX_KEY = "check LINEAR_API_KEY (Settings, Security & access, Personal API keys)"

ISSUE_FIELDS = "id identifier url dueDate updatedAt state { type } assignee { id email }"
TEAM = "query Team($key: String!) { teams(filter: {key: {eq: $key}}) { nodes { id key states { nodes { id type position } } } } }"
LABELS = "query Labels($name: String!) { issueLabels(filter: {name: {eq: $name}}) { nodes { id } } }"
LABEL_CREATE = (
    "mutation Label($input: IssueLabelCreateInput!) { issueLabelCreate(input: $input) { success issueLabel { id } } }"
)
CREATE = f"mutation Create($input: IssueCreateInput!) {{ issueCreate(input: $input) {{ success issue {{ {ISSUE_FIELDS} }} }} }}"
UPDATE = f"mutation Update($id: String!, $input: IssueUpdateInput!) {{ issueUpdate(id: $id, input: $input) {{ success issue {{ {ISSUE_FIELDS} }} }} }}"
ISSUE = f"query Issue($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}"
CHANGED = (
    "query Changed($since: DateTimeOrDuration!, $after: String) { issues(filter: {updatedAt: {gt: $since}, "
    f'labels: {{some: {{name: {{eq: "{LABEL}"}}}}}}}}, first: {PAGE}, after: $after) '
    f"{{ nodes {{ {ISSUE_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)
USERS = "query Users($email: String!) { users(filter: {email: {eq: $email}}) { nodes { id email } } }"


@dataclass(frozen=True)
class _Team:
    id: str
    states: dict[str, str]  # state type -> the first state id of that type


class LinearTracker:
    name = "linear"

    def __init__(self, api_key: str, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.http = TrackerHTTP("Linear", {"Authorization": api_key})
        self._teams: dict[str, _Team] = {}
        self._labels: dict[str, str] = {}

    async def _gql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        status, data, headers = await self.http.request("POST", self.url, body={"query": query, "variables": variables})
        errors = (data or {}).get("errors") if isinstance(data, dict) else None
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str((first.get("extensions") or {}).get("code") or "")
            message = str(first.get("message") or "error")[:200]
            if code == "RATELIMITED":
                raise TrackerUnavailable("Linear is rate limiting the bot", retry_after=retry_after(headers))
            if code in ("AUTHENTICATION_ERROR", "FORBIDDEN") or status in (401, 403):
                raise TrackerRefused(f"Linear refused the bot ({message}): {FIX_KEY}")
            if code == "ENTITY_NOT_FOUND" or "not found" in message.lower():
                raise TicketGone(f"Linear: {message}")
            raise TrackerRefused(f"Linear refused the request: {message}")
        if status >= 400 or not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise refusal("Linear", status, "", FIX_KEY)
        result: dict[str, Any] = data["data"]
        return result

    async def _team(self, key: str) -> _Team:
        if key not in self._teams:
            nodes = (await self._gql(TEAM, {"key": key}))["teams"]["nodes"]
            if not nodes:
                raise TrackerRefused(
                    f"Linear has no team with key {key!r}: check it (`/postmortem tracker linear KEY`, or LINEAR_TEAM)"
                )
            states: dict[str, str] = {}
            for state in sorted(nodes[0]["states"]["nodes"], key=lambda s: s.get("position") or 0):
                states.setdefault(state["type"], state["id"])
            self._teams[key] = _Team(nodes[0]["id"], states)
        return self._teams[key]

    async def _label(self, team: _Team) -> str:
        if team.id not in self._labels:
            nodes = (await self._gql(LABELS, {"name": LABEL}))["issueLabels"]["nodes"]
            if nodes:
                self._labels[team.id] = nodes[0]["id"]
            else:
                made = await self._gql(LABEL_CREATE, {"input": {"name": LABEL, "teamId": team.id}})
                self._labels[team.id] = made["issueLabelCreate"]["issueLabel"]["id"]
        return self._labels[team.id]

    # --- tickets --------------------------------------------------------------------------------

    async def create(self, spec: TicketSpec) -> TicketState:
        team = await self._team(spec.project)
        issue_id = str(uuid.uuid5(NAMESPACE, spec.marker))
        lines = [f"Action item from the post-mortem of {spec.incident or 'an incident'}."]
        if spec.summary_url:
            lines.append(f"[The post-mortem in Slack]({spec.summary_url})")
        if spec.root_cause:
            lines.append(f"Root cause: {spec.root_cause[:2000]}")
        lines.append(f"`{spec.marker}`")  # the marker, for people and for search
        payload: dict[str, Any] = {
            "id": issue_id,
            "teamId": team.id,
            "title": spec.title or "Action item",
            "description": "\n\n".join(lines),
            "labelIds": [await self._label(team)],
            "priority": LINEAR_PRIORITIES.get(spec.priority, 0),
        }
        if spec.due:
            payload["dueDate"] = spec.due.isoformat()
        if spec.assignee:
            payload["assigneeId"] = spec.assignee
        try:
            data = await self._gql(CREATE, {"input": payload})
        except TrackerRefused as exc:
            if "already exists" in str(exc).lower() or "duplicate" in str(exc).lower():
                return await self.get(issue_id)  # an earlier attempt made it
            raise
        return self._state(data["issueCreate"]["issue"])

    async def find_by_marker(self, marker: str, project: str) -> TicketState | None:
        try:
            return await self.get(str(uuid.uuid5(NAMESPACE, marker)))
        except TicketGone:
            return None

    async def get(self, ref: str) -> TicketState:
        data = await self._gql(ISSUE, {"id": ref})
        if not data.get("issue"):
            raise TicketGone(f"Linear has no issue {ref}")
        return self._state(data["issue"])

    async def set_status(self, ref: str, project: str, status: str) -> None:
        team = await self._team(project)
        kinds = {DONE: ("completed",), WONT_DO: ("canceled", "completed"), OPEN: ("unstarted", "backlog", "started")}
        state = next((team.states[k] for k in kinds[status] if k in team.states), None)
        if state is None:
            raise TrackerRefused(f"Linear team {project} has no state for {status.replace('_', ' ')}")
        await self._gql(UPDATE, {"id": ref, "input": {"stateId": state}})

    async def update(self, ref: str, *, due: date | None, assignee: str | None) -> None:
        payload = {"dueDate": due.isoformat() if due else None, "assigneeId": assignee}
        await self._gql(UPDATE, {"id": ref, "input": payload})

    async def changed_since(self, since: datetime, now: datetime) -> AsyncIterator[TicketState]:
        after: str | None = None
        while True:
            data = (await self._gql(CHANGED, {"since": _iso(since), "after": after}))["issues"]
            for node in data["nodes"]:
                yield self._state(node)
            page = data.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                return
            after = page["endCursor"]

    async def user_by_email(self, email: str) -> str | None:
        nodes = (await self._gql(USERS, {"email": email}))["users"]["nodes"]
        return str(nodes[0]["id"]) if nodes else None

    def key_of_url(self, url: str) -> str | None:
        match = re.fullmatch(r"https://linear\.app/[^/]+/issue/([A-Z][A-Z0-9]*-\d+)(/[^/]*)?", url.strip())
        return match.group(1) if match else None

    async def close(self) -> None:
        await self.http.close()

    def _state(self, node: dict[str, Any]) -> TicketState:
        kind = (node.get("state") or {}).get("type")
        assignee = node.get("assignee") or {}
        return TicketState(
            ref=str(node["id"]),
            key=str(node["identifier"]),
            url=str(node["url"]),
            status=DONE if kind == "completed" else WONT_DO if kind == "canceled" else OPEN,
            due=date.fromisoformat(node["dueDate"]) if node.get("dueDate") else None,
            assignee=assignee.get("id"),
            assignee_email=assignee.get("email"),
            updated_at=datetime.fromisoformat(str(node["updatedAt"]).replace("Z", "+00:00")),
        )


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
