"""What every listener reaches through bolt: the services (in bolt's `context`) and who acted.

The app factory registers `provide_services` as a global middleware, so a listener is a
plain top-level function that asks bolt for `context` and finds the one `Services` object
of the process there: importable and testable without building an app around it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.payloads import actor, team
from bot.services import Services

SERVICES = "services"  # the key in bolt's context


def provide_services(services: Services) -> Callable[..., Awaitable[BoltResponse]]:
    """A bolt global middleware that puts `services` in every request's context."""

    # A plain function: bolt passes arguments by the parameter names it reads off it.
    async def services_middleware(
        context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        context[SERVICES] = services
        return await next()

    return services_middleware


def services_of(context: AsyncBoltContext) -> Services:
    """The process's services, as `provide_services` left them in bolt's context."""
    services: Services = context[SERVICES]
    return services


@dataclass(frozen=True)
class Actor:
    """Who pressed, submitted or used a shortcut, and in which workspace.

    Each is a well-formed Slack id, or "" when a malformed payload has none: the services
    then find nothing of that workspace and no such person, and say so.
    """

    team_id: str
    user_id: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Actor:
        return cls(team_id=team(body) or "", user_id=actor(body) or "")

    @property
    def known(self) -> bool:
        """Both the workspace and the person are there."""
        return bool(self.team_id and self.user_id)
