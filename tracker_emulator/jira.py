"""Jira Cloud REST API v3, the subset the bot uses, over real HTTP.

Basic auth (email:API token); issues with ADF descriptions, labels, entity properties,
transitions by status category, user search, JQL search (`search/jql`, token paging) over
`labels =`, `project =` and relative `updated >= -Nm`; 429 with Retry-After; errors as
`{"errorMessages": [...], "errors": {...}}`. Every call is checked against the Jira OpenAPI
document in ../shared/trackers-reference when it is there (search/jql is newer than it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tracker_emulator.server import EmulatorServer

STATUSES = {
    "10000": ("To Do", "new"),
    "10001": ("In Progress", "indeterminate"),
    "10002": ("Done", "done"),
}
TRANSITIONS = [("11", "10000"), ("21", "10001"), ("31", "10002")]
PRIORITIES = {"Highest", "High", "Medium", "Low", "Lowest"}
OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "trackers-reference" / "jira-platform-openapi.v3.json"
NEWER_THAN_OPENAPI = {("GET", "/rest/api/3/search/jql"), ("POST", "/rest/api/3/search/jql")}


def _openapi_routes() -> list[tuple[str, re.Pattern[str]]] | None:
    for path in (OPENAPI, Path("/work/shared/trackers-reference/jira-platform-openapi.v3.json")):
        if path.exists():
            spec = json.loads(path.read_text())
            routes = []
            for template, operations in spec["paths"].items():
                pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
                routes += [(method.upper(), pattern) for method in operations]
            return routes
    return None


_ROUTES: list[tuple[str, re.Pattern[str]]] | None = None


def documented(method: str, path: str) -> bool:
    global _ROUTES
    if (method, path) in NEWER_THAN_OPENAPI:
        return True
    if _ROUTES is None:
        _ROUTES = _openapi_routes() or []
    return not _ROUTES or any(m == method and p.match(path) for m, p in _ROUTES)


def jira_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


@dataclass
class JiraUser:
    account_id: str
    email: str
    name: str
    hide_email: bool = False


@dataclass
class JiraIssue:
    id: str
    key: str
    project: str
    summary: str
    description: Any
    labels: list[str]
    status: str = "10000"
    assignee: str | None = None
    duedate: str | None = None
    priority: str = "Medium"
    properties: dict[str, Any] = field(default_factory=dict)
    updated: datetime | None = None


def _error(status: int, *messages: str, **errors: str) -> web.Response:
    return web.json_response({"errorMessages": list(messages), "errors": errors}, status=status)


class JiraEmulator(EmulatorServer):
    def __init__(self, clock: Any = None, *, email: str = "bot@acme.test", token: str = "jira-token") -> None:
        super().__init__(clock)
        self.email, self.token = email, token
        self.projects: set[str] = {"OPS"}
        self.users: dict[str, JiraUser] = {}
        self.issues: dict[str, JiraIssue] = {}
        self.violations: list[str] = []
        self._next = 10001

    # --- set-up and inspection -------------------------------------------------------------

    def add_user(self, account_id: str, email: str, name: str = "", hide_email: bool = False) -> None:
        self.users[account_id] = JiraUser(account_id, email, name or email, hide_email)

    def issue(self, key: str) -> JiraIssue:
        return next(i for i in self.issues.values() if i.key == key)

    def move(self, key: str, category: str) -> JiraIssue:
        """A person moves the issue in Jira to a status of `category` (new, indeterminate, done)."""
        issue = self.issue(key)
        issue.status = next(sid for sid, (_n, cat) in STATUSES.items() if cat == category)
        issue.updated = self.now()
        return issue

    def edit(self, key: str, *, duedate: str | None = None) -> JiraIssue:
        issue = self.issue(key)
        issue.duedate = duedate
        issue.updated = self.now()
        return issue

    def assign(self, key: str, account_id: str | None) -> JiraIssue:
        """A person reassigns the issue in Jira."""
        issue = self.issue(key)
        issue.assignee, issue.updated = account_id, self.now()
        return issue

    def delete(self, key: str) -> None:
        """A person deletes the issue in Jira: it answers 404 from now on."""
        del self.issues[self.issue(key).id]

    async def send_webhook(self, url: str, secret: str, key: str, event: str = "jira:issue_updated") -> tuple[int, Any]:
        body = {
            "webhookEvent": event,
            "timestamp": int(self.now().timestamp() * 1000),
            "issue": self._json(self.issue(key)),
            "changelog": {"items": []},
        }
        raw = json.dumps(body).encode()
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        return await self.post_signed(url, body, {"X-Hub-Signature": signature})

    # --- HTTP -------------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._dispatch)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        what = f"{request.method} {request.path}"
        self.calls.append(what)
        if not documented(request.method, request.path):
            self.violations.append(what)
            return _error(404, f"No such endpoint in the Jira REST API v3: {what}")
        expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _error(401, "You are not authenticated. Authentication required to perform this operation.")
        fault = self._fault_for(what) or await self._chaos_fault(re.sub(r"(/issue/)[^/]+", r"\1{id}", what))
        if fault and not fault.after:
            await self.stall(fault)
            return self._fault_response(fault)
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            return _error(400, "Unexpected character in the request body: not JSON")
        response = self._handle(request, body)
        if fault:
            await self.stall(fault)
            return self._fault_response(fault)
        return response

    @staticmethod
    def _fault_response(fault: Any) -> web.Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.status == 429:
            return web.json_response(
                {"errorMessages": ["Rate limit exceeded."], "errors": {}}, status=429, headers=headers
            )
        return web.json_response(
            {"errorMessages": ["Internal server error"], "errors": {}}, status=fault.status, headers=headers
        )

    def _handle(self, request: web.Request, body: Any) -> web.Response:
        path, method = request.path.removeprefix("/rest/api/3/"), request.method
        query = request.query
        if method == "POST" and path == "issue":
            return self._create(body)
        if path == "search/jql":
            return self._search(dict(query) if method == "GET" else (body or {}))
        if method == "GET" and path == "user/search":
            return self._user_search(query.get("query", ""))
        match = re.fullmatch(r"issue/([^/]+)(/transitions|/properties/[^/]+)?", path)
        if not match:
            return _error(404, "Not found")
        issue = next((i for i in self.issues.values() if match.group(1) in (i.id, i.key)), None)
        if issue is None:
            return _error(404, "Issue does not exist or you do not have permission to see it.")
        tail = match.group(2) or ""
        if tail == "/transitions":
            if method == "GET":
                return web.json_response({"transitions": [self._transition(t, s) for t, s in TRANSITIONS]})
            wanted = ((body or {}).get("transition") or {}).get("id")
            target = dict(TRANSITIONS).get(str(wanted))
            if target is None:
                return _error(400, "", transition=f"Transition id '{wanted}' is not valid for this issue.")
            issue.status, issue.updated = target, self.now()
            return web.Response(status=204)
        if tail.startswith("/properties/"):
            if method == "PUT":
                issue.properties[tail.split("/")[-1]] = body
                return web.Response(status=200)
            return web.json_response({"key": tail.split("/")[-1], "value": issue.properties.get(tail.split("/")[-1])})
        if method == "GET":
            return web.json_response(self._json(issue))
        if method == "PUT":
            fields = (body or {}).get("fields") or {}
            errors = self._check_fields(fields, creating=False)
            if errors:
                return _error(400, **errors)
            if "duedate" in fields:
                issue.duedate = fields["duedate"]
            if "assignee" in fields:
                issue.assignee = (fields["assignee"] or {}).get("accountId")
            issue.updated = self.now()
            return web.Response(status=204)
        return _error(405, f"{method} is not allowed here")

    def _check_fields(self, fields: dict[str, Any], *, creating: bool) -> dict[str, str]:
        errors: dict[str, str] = {}
        if creating:
            if (fields.get("project") or {}).get("key") not in self.projects:
                errors["project"] = "Specify a valid project ID or key"
            if (fields.get("issuetype") or {}).get("name") not in ("Task", "Bug", "Story"):
                errors["issuetype"] = "Specify a valid issue type"
            summary = fields.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                errors["summary"] = "You must specify a summary of the issue."
            elif len(summary) > 255:
                errors["summary"] = "Summary must be less than 255 characters."
            description = fields.get("description")
            if description is not None and not (
                isinstance(description, dict) and description.get("type") == "doc" and description.get("version") == 1
            ):
                errors["description"] = "Operation value must be an Atlassian Document."
            labels = fields.get("labels") or []
            if not all(isinstance(label, str) and label and " " not in label for label in labels):
                errors["labels"] = "Labels cannot contain spaces."
            priority = fields.get("priority")
            if priority is not None and (priority or {}).get("name") not in PRIORITIES:
                errors["priority"] = "Specify a valid priority"
        assignee = fields.get("assignee")
        if assignee and assignee.get("accountId") not in self.users:
            errors["assignee"] = "User does not exist or you do not have permission to see it."
        due = fields.get("duedate")
        if due is not None:
            try:
                date.fromisoformat(due)
            except (TypeError, ValueError):
                errors["duedate"] = "Error parsing date string: " + str(due)
        return errors

    def _create(self, body: Any) -> web.Response:
        fields = (body or {}).get("fields") or {}
        errors = self._check_fields(fields, creating=True)
        if errors:
            return _error(400, **errors)
        issue_id = str(self._next)
        self._next += 1
        project = fields["project"]["key"]
        key = f"{project}-{sum(1 for i in self.issues.values() if i.project == project) + 1}"
        issue = JiraIssue(
            id=issue_id,
            key=key,
            project=project,
            summary=fields["summary"],
            description=fields.get("description"),
            labels=list(fields.get("labels") or []),
            assignee=(fields.get("assignee") or {}).get("accountId"),
            duedate=fields.get("duedate"),
            priority=(fields.get("priority") or {}).get("name", "Medium"),
            properties={p["key"]: p["value"] for p in (body or {}).get("properties") or []},
            updated=self.now(),
        )
        self.issues[issue_id] = issue
        return web.json_response(
            {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}, status=201
        )

    def _search(self, params: dict[str, Any]) -> web.Response:
        jql = str(params.get("jql") or "")
        try:
            matches = self._jql(jql)
        except ValueError as exc:
            return _error(400, f"Error in the JQL Query: {exc}")
        size = min(int(params.get("maxResults") or 50), 100)
        start = int(params.get("nextPageToken") or 0)
        page = matches[start : start + size]
        answer: dict[str, Any] = {"issues": [self._json(i) for i in page], "isLast": start + size >= len(matches)}
        if not answer["isLast"]:
            answer["nextPageToken"] = str(start + size)
        return web.json_response(answer)

    def _jql(self, jql: str) -> list[JiraIssue]:
        where = re.split(r"\s+ORDER\s+BY\s+", jql, maxsplit=1, flags=re.I)[0]
        issues = list(self.issues.values())
        for clause in re.split(r"\s+AND\s+", where.strip(), flags=re.I):
            clause = clause.strip()
            if m := re.fullmatch(r'labels\s*=\s*"?([^"\s]+)"?', clause):
                issues = [i for i in issues if m.group(1) in i.labels]
            elif m := re.fullmatch(r'project\s*=\s*"?([A-Z0-9_]+)"?', clause):
                issues = [i for i in issues if i.project == m.group(1)]
            elif m := re.fullmatch(r"updated\s*>=\s*-(\d+)m", clause):
                since = self.now() - timedelta(minutes=int(m.group(1)))
                issues = [i for i in issues if i.updated and i.updated >= since]
            else:
                raise ValueError(f"the emulator does not know the clause {clause!r}")
        issues.sort(key=lambda i: (i.updated or self.now(), int(i.id)))
        return issues

    def _user_search(self, query: str) -> web.Response:
        found = [u for u in self.users.values() if query and query.lower() in u.email.lower()]
        return web.json_response(
            [
                {"accountId": u.account_id, "accountType": "atlassian", "displayName": u.name, "active": True}
                | ({} if u.hide_email else {"emailAddress": u.email})
                for u in found
            ]
        )

    def _transition(self, transition_id: str, status_id: str) -> dict[str, Any]:
        name, category = STATUSES[status_id]
        return {
            "id": transition_id,
            "name": name,
            "to": {"id": status_id, "name": name, "statusCategory": {"key": category}},
        }

    def _json(self, issue: JiraIssue) -> dict[str, Any]:
        name, category = STATUSES[issue.status]
        user = self.users.get(issue.assignee or "")
        assignee = (
            {"accountId": user.account_id, "displayName": user.name}
            | ({} if user.hide_email else {"emailAddress": user.email})
            if user
            else None
        )
        return {
            "id": issue.id,
            "key": issue.key,
            "self": f"{self.url}/rest/api/3/issue/{issue.id}",
            "fields": {
                "summary": issue.summary,
                "status": {"id": issue.status, "name": name, "statusCategory": {"key": category}},
                "assignee": assignee,
                "duedate": issue.duedate,
                "labels": issue.labels,
                "updated": jira_time(issue.updated or self.now()),
            },
        }
