"""What every emulated Web API method shares: the error answer, the method registry, a
call's arguments and the HTTP reply.

* :class:`SlackError` -- raised by a handler to answer ``{"ok": false, "error": name}``.
* :func:`api_method` -- decorator registering one handler per Web API method together with
  the OAuth scope it needs and every error name it may raise; the registry (:data:`METHODS`)
  is what lets a test compare our error names with the ones Slack's OpenAPI spec documents.
  The handlers live in :mod:`slack_emulator.methods`, one module per family; importing that
  package fills the registry once, and it never changes afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from aiohttp import web

from slack_emulator.scopes import Scope

if TYPE_CHECKING:
    from slack_emulator.server import SlackEmulator

__all__ = [
    "JSON",
    "METHODS",
    "ApiMethod",
    "Args",
    "Reply",
    "SlackError",
    "api_method",
    "implemented_methods",
    "possible_errors",
]

JSON = dict[str, Any]
TokenType = Literal["bot", "app"]

_TS_RE = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


class SlackError(Exception):
    """A Web API error answer: ``{"ok": false, "error": error, **extra}`` with HTTP 200.

    ``extra`` carries what Slack adds to some errors, e.g. ``response_metadata.messages``
    explaining an ``invalid_arguments`` or ``invalid_blocks``.
    """

    def __init__(self, error: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.extra: JSON = dict(extra or {})


HandlerFn: TypeAlias = Callable[["SlackEmulator", "Args"], JSON]


@dataclass(frozen=True)
class ApiMethod:
    """One registered Web API method: its handler and every error name it may raise."""

    name: str
    handler: HandlerFn
    errors: frozenset[str]
    token_type: TokenType
    scope: Scope = None


_REGISTRY: dict[str, ApiMethod] = {}
METHODS: Mapping[str, ApiMethod] = MappingProxyType(_REGISTRY)
"""Read-only view of the registry: method name -> :class:`ApiMethod`."""

# Errors a handler may raise whatever its declaration: a missing or malformed argument.
HANDLER_ERRORS = frozenset({"invalid_arguments"})
# Errors the dispatcher answers before the handler runs, for any method.
DISPATCH_ERRORS = frozenset(
    {
        "not_authed",  # no token at all
        "invalid_auth",  # a token this workspace does not know
        "not_allowed_token_type",  # a bot token where an app-level token is needed, or back
        "invalid_json",  # a JSON body that does not parse or is not an object
        "ratelimited",  # injected with SlackEmulator.fail(method, status=429)
    }
)


def api_method(
    name: str, *, scope: Scope, errors: Iterable[str] = (), token_type: TokenType = "bot"
) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of Web API method ``name``.

    ``scope`` is the OAuth scope the token needs (docs.slack.dev, the method's "Required
    scopes"): None, one name, or one per conversation type (:func:`per_conversation`).  It
    is required, so a new method cannot forget it; without it the dispatcher answers
    ``missing_scope`` before the handler runs.

    ``errors`` lists every error name the handler may raise (besides ``invalid_arguments``).
    The dispatcher refuses to send any other name -- an undeclared error is an emulator bug
    and answers HTTP 500 -- so the declaration stays true and can be checked against
    Slack's spec.
    """

    def register(fn: HandlerFn) -> HandlerFn:
        if name in _REGISTRY:
            raise RuntimeError(f"Web API method {name} registered twice")
        _REGISTRY[name] = ApiMethod(name, fn, frozenset(errors), token_type, scope)
        return fn

    return register


def implemented_methods() -> list[str]:
    """Names of every Web API method the emulator answers, sorted."""
    return sorted(_REGISTRY)


def possible_errors(method: str) -> frozenset[str]:
    """Every error name a call of ``method`` can be answered with (injected ones aside)."""
    spec = _REGISTRY[method]
    scope_errors = frozenset() if spec.scope is None else frozenset({"missing_scope"})
    return spec.errors | HANDLER_ERRORS | DISPATCH_ERRORS | scope_errors


# --------------------------------------------------------------------------------------
# Request arguments and replies
# --------------------------------------------------------------------------------------


class Args:
    """A call's arguments, merged from query string, form body and JSON body.

    Form values arrive as strings while JSON values keep their JSON types (slack_sdk
    sends ``chat.*`` and ``views.*`` as JSON), so every accessor accepts both.  Missing,
    ``None`` and empty-string values all count as absent, as they do for Slack.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def raw(self, name: str) -> Any:
        value = self._values.get(name)
        return None if value is None or value == "" else value

    def text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def required(self, name: str, error: str = "invalid_arguments") -> str:
        value = self.text(name)
        if value is None:
            raise SlackError(error)
        return value

    def flag(self, name: str) -> bool:
        value = self.raw(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def integer(self, name: str, default: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None

    def limit(self, default: int, maximum: int) -> int:
        """A page size: ``0`` means the default, values above ``maximum`` are clamped."""
        value = self.integer("limit", default)
        if value <= 0:
            return default
        return min(value, maximum)

    def timestamp(self, name: str, error: str) -> str | None:
        value = self.text(name)
        if value is not None and not _TS_RE.match(value):
            raise SlackError(error)
        return value

    def json_value(self, name: str, error: str = "invalid_arguments") -> Any:
        """A JSON argument: decoded when it came as a string (form), as-is otherwise."""
        value = self.raw(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise SlackError(error) from None
        return value


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: JSON when ``body`` is a dict, plain text otherwise."""

    status: int
    body: JSON | str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        if isinstance(self.body, dict) and not self.body.get("ok"):
            return self.body.get("error")
        return None

    def to_response(self) -> web.Response:
        if isinstance(self.body, dict):
            return web.json_response(self.body, status=self.status, headers=dict(self.headers))
        return web.Response(text=self.body, status=self.status, headers=dict(self.headers))
