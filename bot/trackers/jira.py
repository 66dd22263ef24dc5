"""Jira Cloud, REST API v3: Basic auth with email and API token; JSON; ADF descriptions."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from bot.trackers.base import (
    DONE,
    OPEN,
    PRIORITY_NAMES,
    TicketSpec,
    TicketState,
    TrackerRefused,
)
from bot.trackers.http import TrackerHTTP, refusal

FIELDS = "status,assignee,duedate,updated,labels"
LABEL = "postmortem"
PAGE = 50
SUMMARY_MAX = 255
FIX_CREDENTIALS = "check JIRA_EMAIL and JIRA_API_TOKEN (an API token from id.atlassian.com)"


class JiraTracker:
    name = "jira"

    def __init__(self, url: str, email: str, token: str, issue_type: str = "Task") -> None:
        self.base = url.rstrip("/")
        self.issue_type = issue_type
        auth = base64.b64encode(f"{email}:{token}".encode()).decode()
        self.http = TrackerHTTP("Jira", {"Authorization": f"Basic {auth}"})

    def _api(self, path: str) -> str:
        return f"{self.base}/rest/api/3/{path}"

    async def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None) -> Any:
        status, data, _headers = await self.http.request(method, self._api(path), body=body, params=params)
        if status >= 400:
            raise refusal("Jira", status, _detail(data), FIX_CREDENTIALS)
        return data

    # --- tickets --------------------------------------------------------------------------------

    async def create(self, spec: TicketSpec) -> TicketState:
        fields: dict[str, Any] = {
            "project": {"key": spec.project},
            "issuetype": {"name": self.issue_type},
            "summary": spec.title[:SUMMARY_MAX] or "Action item",
            "description": _adf(spec),
            "labels": [LABEL, spec.marker],
        }
        if spec.due:
            fields["duedate"] = spec.due.isoformat()
        if spec.assignee:
            fields["assignee"] = {"accountId": spec.assignee}
        if spec.priority in PRIORITY_NAMES:
            fields["priority"] = {"name": PRIORITY_NAMES[spec.priority]}
        body = {"fields": fields, "properties": [{"key": "postmortem-bot", "value": {"marker": spec.marker}}]}
        status, data, _h = await self.http.request("POST", self._api("issue"), body=body)
        if status == 400 and "priority" in ((data or {}).get("errors") or {}):
            # A project whose screens have no priority field: the ticket matters more than it.
            del fields["priority"]
            status, data, _h = await self.http.request("POST", self._api("issue"), body=body)
        if status == 400 and "project" in ((data or {}).get("errors") or {}):
            raise TrackerRefused(
                f"Jira has no project {spec.project!r} the bot can create issues in: "
                "check the key (`/postmortem tracker jira KEY`, or JIRA_PROJECT)"
            )
        if status >= 400:
            raise refusal("Jira", status, _detail(data), FIX_CREDENTIALS)
        return await self.get(str(data["key"]))

    async def find_by_marker(self, marker: str, project: str) -> TicketState | None:
        data = await self._call(
            "GET", "search/jql", params={"jql": f'labels = "{marker}"', "fields": FIELDS, "maxResults": "2"}
        )
        issues = (data or {}).get("issues") or []
        return self._state(issues[0]) if issues else None

    async def get(self, ref: str) -> TicketState:
        data = await self._call("GET", f"issue/{quote(ref)}", params={"fields": FIELDS})
        return self._state(data)

    async def set_status(self, ref: str, project: str, status: str) -> None:
        data = await self._call("GET", f"issue/{quote(ref)}/transitions")
        want = "done" if status != OPEN else None
        for transition in (data or {}).get("transitions") or []:
            category = ((transition.get("to") or {}).get("statusCategory") or {}).get("key")
            if (want and category == want) or (not want and category in ("new", "indeterminate")):
                await self._call(
                    "POST", f"issue/{quote(ref)}/transitions", body={"transition": {"id": transition["id"]}}
                )
                return
        raise TrackerRefused(
            f"Jira's workflow for {ref} has no transition to a {'done' if want else 'to-do'} status from where it is"
        )

    async def update(self, ref: str, *, due: date | None, assignee: str | None) -> None:
        fields = {
            "duedate": due.isoformat() if due else None,
            "assignee": {"accountId": assignee} if assignee else None,
        }
        await self._call("PUT", f"issue/{quote(ref)}", body={"fields": fields})

    async def changed_since(self, since: datetime, now: datetime) -> AsyncIterator[TicketState]:
        # JQL reads absolute dates in the API user's time zone, at minute precision; a
        # relative "-Nm" does not care which zone that is.
        minutes = max(1, math.ceil((now - since) / timedelta(minutes=1)) + 1)
        jql = f"labels = {LABEL} AND updated >= -{minutes}m ORDER BY updated ASC"
        token: str | None = None
        while True:
            params = {"jql": jql, "fields": FIELDS, "maxResults": str(PAGE)}
            if token:
                params["nextPageToken"] = token
            data = await self._call("GET", "search/jql", params=params) or {}
            for issue in data.get("issues") or []:
                yield self._state(issue)
            token = data.get("nextPageToken")
            if not token or data.get("isLast"):
                return

    async def user_by_email(self, email: str) -> str | None:
        users = await self._call("GET", "user/search", params={"query": email}) or []
        people = [u for u in users if isinstance(u, dict) and u.get("accountType", "atlassian") == "atlassian"]
        exact = [u for u in people if (u.get("emailAddress") or "").lower() == email.lower()]
        # Privacy settings may hide emailAddress: then one answer to the email query is the person.
        chosen = exact or (people if len(people) == 1 and not people[0].get("emailAddress") else [])
        return str(chosen[0]["accountId"]) if chosen else None

    def key_of_url(self, url: str) -> str | None:
        match = re.fullmatch(re.escape(self.base) + r"/browse/([A-Z][A-Z0-9_]+-\d+)/?", url.strip())
        return match.group(1) if match else None

    async def close(self) -> None:
        await self.http.close()

    # --- shapes --------------------------------------------------------------------------------

    def _state(self, issue: dict[str, Any]) -> TicketState:
        fields = issue.get("fields") or {}
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        assignee = fields.get("assignee") or {}
        due = fields.get("duedate")
        return TicketState(
            ref=str(issue["id"]),
            key=str(issue["key"]),
            url=f"{self.base}/browse/{issue['key']}",
            status=DONE if category == "done" else OPEN,
            due=date.fromisoformat(due) if due else None,
            assignee=assignee.get("accountId"),
            assignee_email=assignee.get("emailAddress"),
            updated_at=parse_jira_time(fields.get("updated")),
        )


def parse_jira_time(value: Any) -> datetime:
    """Jira's "2026-03-10T13:05:00.000+0000"."""
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")


def _detail(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    bits = [str(m) for m in data.get("errorMessages") or []]
    bits += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
    return (": " + "; ".join(bits))[:200] if bits else ""


def _text(text: str, href: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if href:
        node["marks"] = [{"type": "link", "attrs": {"href": href}}]
    return node


def _adf(spec: TicketSpec) -> dict[str, Any]:
    """The description, as Atlassian Document Format (v3 refuses a plain string)."""
    first: list[dict[str, Any]] = [_text("Action item from the post-mortem of "), _text(spec.incident or "an incident")]
    if spec.summary_url:
        first += [_text(" ("), _text("post-mortem in Slack", spec.summary_url), _text(")")]
    content = [{"type": "paragraph", "content": first}]
    if spec.root_cause:
        content.append({"type": "paragraph", "content": [_text("Root cause: " + spec.root_cause[:2000])]})
    return {"type": "doc", "version": 1, "content": content}
