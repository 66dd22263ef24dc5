"""Linear's GraphQL API, the subset the bot uses, executed against Linear's published schema.

Every query is parsed, validated and executed by graphql-core against
../shared/trackers-reference/linear-schema.graphql, so a query Linear would refuse is refused
here; resolvers serve teams and their workflow states, labels, users, issues (create with a
chosen id, update, read by id or identifier, `issues(filter: {updatedAt, labels})` paged by
cursor). Auth is the API key in Authorization; errors come as `{"errors": [{message,
extensions: {code}}]}`; rate limiting answers RATELIMITED with Retry-After.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from graphql import GraphQLError, GraphQLSchema, build_schema, graphql, parse, validate

from tracker_emulator.server import EmulatorServer

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "trackers-reference" / "linear-schema.graphql"
STATES = [
    ("backlog", "Backlog"),
    ("unstarted", "Todo"),
    ("started", "In Progress"),
    ("completed", "Done"),
    ("canceled", "Canceled"),
]


@cache
def schema() -> GraphQLSchema:
    for path in (SCHEMA, Path("/work/shared/trackers-reference/linear-schema.graphql")):
        if path.exists():
            return build_schema(path.read_text())
    raise FileNotFoundError("linear-schema.graphql not found beside the repository (../shared/trackers-reference)")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class LinearIssue:
    id: str
    identifier: str
    team: str
    title: str
    description: str
    state: str  # a state type
    priority: int = 0
    assignee: str | None = None
    due: str | None = None
    labels: list[str] = field(default_factory=list)
    updated: datetime | None = None


def _gql_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class LinearEmulator(EmulatorServer):
    def __init__(self, clock: Any = None, *, api_key: str = "lin_api_test") -> None:
        super().__init__(clock)
        self.api_key = api_key
        self.team_ids: dict[str, str] = {"ENG": str(uuid.uuid4())}
        self.people: dict[str, str] = {}  # id -> email
        self.labels: dict[str, str] = {}  # id -> name
        self.tickets: dict[str, LinearIssue] = {}

    def add_user(self, user_id: str, email: str) -> None:
        self.people[user_id] = email

    def find(self, identifier: str) -> LinearIssue:
        return next(i for i in self.tickets.values() if identifier in (i.identifier, i.id))

    def move(self, identifier: str, state_type: str) -> LinearIssue:
        """A person moves the issue in Linear to a state of `state_type`."""
        issue = self.find(identifier)
        issue.state, issue.updated = state_type, self.now()
        return issue

    def assign(self, identifier: str, user_id: str | None) -> LinearIssue:
        """A person reassigns the issue in Linear."""
        issue = self.find(identifier)
        issue.assignee, issue.updated = user_id, self.now()
        return issue

    async def send_webhook(
        self, url: str, secret: str, identifier: str, *, action: str = "update", sent_at: datetime | None = None
    ) -> tuple[int, Any]:
        issue = self.find(identifier)
        body = {
            "action": action,
            "type": "Issue",
            "data": {"id": issue.id, "identifier": issue.identifier, "title": issue.title},
            "url": self._url(issue),
            "createdAt": iso(self.now()),
            "webhookTimestamp": int((sent_at or self.now()).timestamp() * 1000),
        }
        raw = json.dumps(body).encode()
        signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return await self.post_signed(url, body, {"Linear-Signature": signature, "Linear-Event": "Issue"})

    # --- HTTP -------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/graphql", self._graphql)

    async def _graphql(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.api_key:
            return web.json_response(
                {
                    "errors": [
                        {
                            "message": "Authentication required, not authenticated",
                            "extensions": {"code": "AUTHENTICATION_ERROR"},
                        }
                    ]
                },
                status=401,
            )
        try:
            body = await request.json()
            query, variables = body["query"], body.get("variables") or {}
            document = parse(query)
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return web.json_response(
                {"errors": [{"message": f"Bad request: {exc}", "extensions": {"code": "BAD_REQUEST"}}]}, status=400
            )
        problems = validate(schema(), document)
        if problems:
            return web.json_response(
                {
                    "errors": [
                        {"message": p.message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}} for p in problems
                    ]
                },
                status=400,
            )
        what = query
        self.calls.append(" ".join(query.split()[:2]))
        fault = self._fault_for(what) or await self._chaos_fault(" ".join(query.split()[:2]))
        if fault and not fault.after:
            await self.stall(fault)
            return self._fault_response(fault)
        result = await graphql(schema(), query, root_value=self, variable_values=variables)
        if fault:
            await self.stall(fault)
            return self._fault_response(fault)
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        return web.json_response(payload, status=200)

    @staticmethod
    def _fault_response(fault: Any) -> web.Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.status in (400, 429):
            body = {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]}
            return web.json_response(body, status=fault.status, headers=headers)
        return web.json_response(
            {"errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
            status=fault.status,
            headers=headers,
        )

    # --- resolvers (graphql-core reads root fields off this object) -----------------------------

    def teams(self, _info: Any, filter: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        key = ((filter or {}).get("key") or {}).get("eq")
        nodes = [self._team(k) for k in self.team_ids if key is None or k == key]
        return {"nodes": nodes}

    def issueLabels(self, _info: Any, filter: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        name = ((filter or {}).get("name") or {}).get("eq")
        return {"nodes": [{"id": i, "name": n} for i, n in self.labels.items() if name is None or n == name]}

    def issueLabelCreate(self, _info: Any, input: dict[str, Any], **_: Any) -> dict[str, Any]:
        label_id = str(uuid.uuid4())
        self.labels[label_id] = input["name"]
        return {"success": True, "lastSyncId": 1, "issueLabel": {"id": label_id, "name": input["name"]}}

    def users(self, _info: Any, filter: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        email = ((filter or {}).get("email") or {}).get("eq")
        return {
            "nodes": [{"id": i, "email": e, "name": e} for i, e in self.people.items() if email is None or e == email]
        }

    def issue_(self, identifier: str) -> LinearIssue:
        found = next((i for i in self.tickets.values() if identifier in (i.id, i.identifier)), None)
        if found is None:
            raise _gql_error("Entity not found: Issue", "INVALID_INPUT")
        return found

    def issueCreate(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        team_key = next((k for k, v in self.team_ids.items() if v == input.get("teamId")), None)
        if team_key is None:
            raise _gql_error("Entity not found: Team", "INVALID_INPUT")
        issue_id = input.get("id") or str(uuid.uuid4())
        if issue_id in self.tickets:
            raise _gql_error("Issue with this id already exists", "INVALID_INPUT")
        if input.get("assigneeId") and input["assigneeId"] not in self.people:
            raise _gql_error("Entity not found: User", "INVALID_INPUT")
        number = sum(1 for i in self.tickets.values() if i.team == team_key) + 1
        issue = LinearIssue(
            id=issue_id,
            identifier=f"{team_key}-{number}",
            team=team_key,
            title=input["title"],
            description=input.get("description") or "",
            state="unstarted",
            priority=input.get("priority") or 0,
            assignee=input.get("assigneeId"),
            due=input.get("dueDate"),
            labels=list(input.get("labelIds") or []),
            updated=self.now(),
        )
        self.tickets[issue_id] = issue
        return {"success": True, "lastSyncId": 1, "issue": self._issue(issue)}

    def issueUpdate(self, _info: Any, id: str, input: dict[str, Any]) -> dict[str, Any]:
        issue = self.issue_(id)
        if "stateId" in input:
            state = next((s for s in self._team(issue.team)["states"]["nodes"] if s["id"] == input["stateId"]), None)
            if state is None:
                raise _gql_error("Entity not found: WorkflowState", "INVALID_INPUT")
            issue.state = state["type"]
        if "dueDate" in input:
            issue.due = input["dueDate"]
        if "assigneeId" in input:
            issue.assignee = input["assigneeId"]
        issue.updated = self.now()
        return {"success": True, "lastSyncId": 1, "issue": self._issue(issue)}

    def issues_(self, filter: dict[str, Any] | None, first: int | None, after: str | None) -> dict[str, Any]:
        found = list(self.tickets.values())
        since = ((filter or {}).get("updatedAt") or {}).get("gt")
        if since:
            moment = datetime.fromisoformat(str(since).replace("Z", "+00:00"))
            found = [i for i in found if i.updated and i.updated > moment]
        label = ((((filter or {}).get("labels") or {}).get("some") or {}).get("name") or {}).get("eq")
        if label:
            ids = {i for i, n in self.labels.items() if n == label}
            found = [i for i in found if ids & set(i.labels)]
        found.sort(key=lambda i: (i.updated or self.now(), i.identifier))
        start = int(after) if after else 0
        size = min(first or 50, 250)
        page = found[start : start + size]
        more = start + size < len(found)
        return {
            "nodes": [self._issue(i) for i in page],
            "pageInfo": {
                "hasNextPage": more,
                "endCursor": str(start + size) if page else None,
                "hasPreviousPage": start > 0,
            },
        }

    # graphql-core's default resolver calls a callable attribute with (info, **args).
    def issue(self, _info: Any, id: str) -> dict[str, Any]:
        return self._issue(self.issue_(id))

    def issues(
        self,
        _info: Any,
        filter: dict[str, Any] | None = None,
        first: int | None = None,
        after: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        return self.issues_(filter, first, after)

    def _team(self, key: str) -> dict[str, Any]:
        team_id = self.team_ids[key]
        states = [
            {"id": f"{team_id}:{kind}", "name": name, "type": kind, "position": float(n)}
            for n, (kind, name) in enumerate(STATES)
        ]
        return {"id": team_id, "key": key, "name": key, "states": {"nodes": states}}

    def _url(self, issue: LinearIssue) -> str:
        return f"https://linear.app/acme/issue/{issue.identifier}/{issue.title.lower().replace(' ', '-')[:40]}"

    def _issue(self, issue: LinearIssue) -> dict[str, Any]:
        return {
            "id": issue.id,
            "identifier": issue.identifier,
            "url": self._url(issue),
            "title": issue.title,
            "description": issue.description,
            "dueDate": issue.due,
            "updatedAt": iso(issue.updated or self.now()),
            "state": {"type": issue.state},
            "assignee": {"id": issue.assignee, "email": self.people[issue.assignee]} if issue.assignee else None,
        }
