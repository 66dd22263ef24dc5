"""A local, in-memory emulator of the Slack Web API.

Why this exists: the bot's end-to-end tests and the ``postmortem-bot demo`` command need a
Slack that behaves like the real one -- same argument names, same response shapes, same
error names, same awkward rules (``conversations.history`` hides thread replies and treats
``latest`` as exclusive, a trigger id works once and only for 3 s, a bot must be a member
of a channel to post in it...) -- without a network, a workspace or credentials.  Mocks of
``AsyncWebClient`` would only check that we call what we *think* Slack wants; this server
is spoken to by the real ``slack_sdk`` client over real HTTP, so serialisation, retries and
error handling are exercised exactly as in production.

Shape of the module:

* :class:`SlackError` -- raised by a handler to answer ``{"ok": false, "error": name}``.
* :func:`api_method` -- decorator registering one handler per Web API method together with
  the OAuth scope it needs and every error name it may raise; the registry (:data:`METHODS`)
  is what lets a test compare our error names with the ones Slack's OpenAPI spec documents.
  The bot token holds manifest.yml's bot scopes (see :mod:`slack_emulator.scopes`), so a
  method the manifest does not cover answers ``missing_scope`` here as in a real workspace.
* :class:`SlackEmulator` -- the server and its state: users, channels and their messages,
  pins, views, trigger ids, uploaded files, response_url hooks, a log of every call, and
  fault injection: scripted (rate limits, 5xx, error answers, delays for one method) and a
  seeded random chaos mode (:meth:`SlackEmulator.chaos`) for soak tests.  It also speaks Socket Mode:
  ``apps.connections.open`` hands out a ``ws://`` URL to the same server, where a client
  (slack_sdk's ``SocketModeClient``, under bolt's ``AsyncSocketModeHandler``) gets Slack's
  ``hello`` and then the envelopes a test sends with
  :meth:`SlackEmulator.send_socket_envelope`, which waits for the client's ack.

Everything lives in memory and runs on the caller's asyncio event loop; nothing is global
except the method registry, which is filled once at import time and never changes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import mimetypes
import random
import re
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, WSMsgType, web

from bot.clock import Clock, SystemClock
from slack_emulator.scopes import (
    APP_TOKEN_SCOPES,
    ConversationKind,
    Scope,
    manifest_bot_scopes,
    per_conversation,
)

__all__ = [
    "METHODS",
    "ApiMethod",
    "SlackEmulator",
    "SlackError",
    "api_method",
    "implemented_methods",
    "possible_errors",
]

logger = logging.getLogger("postmortem_bot.emulator")

JSON = dict[str, Any]
TokenType = Literal["bot", "app"]

# Limits Slack enforces (docs.slack.dev, "Reference: blocks / views / chat.postMessage").
MAX_TEXT_CHARS = 40_000  # longer message text is truncated, not refused
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_BUTTON_CHARS = 24  # title, submit, close
MAX_PRIVATE_METADATA_CHARS = 3_000
MAX_CALLBACK_ID_CHARS = 255
MAX_SECTION_TEXT_CHARS = 3_000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_CHARS = 2_000
MAX_HEADER_TEXT_CHARS = 150
MAX_INPUT_LABEL_CHARS = 2_000
MAX_PLAIN_TEXT_INPUT_LENGTH = 3_000
MAX_SELECT_OPTIONS = 100
MAX_CONVERSATION_USERS = 8
DEFAULT_TRIGGER_LIFETIME = 3.0  # seconds

# Socket Mode (docs.slack.dev, "Using Socket Mode").
SOCKET_PATH = "/_socket"
SOCKET_ENVELOPE_TYPES = frozenset({"events_api", "slash_commands", "interactive"})
SOCKET_CLOSE_TIMEOUT = 2.0  # seconds stop() waits for a client's answer to our close frame

# Chaos mode (SlackEmulator.chaos).
TRIGGER_BOUND_METHODS = frozenset({"views.open", "views.push"})
"""Methods that spend a trigger id: exempt from chaos unless asked (see chaos())."""
UPLOAD_TARGET = "(upload)"
"""The name chaos gives the upload URL of files.getUploadURLExternal in its counts."""

_TS_RE = re.compile(r"^\d{1,12}(\.\d{1,6})?$")

OPEN_SCOPES: Mapping[ConversationKind, str] = MappingProxyType(
    {"im": "im:write", "mpim": "mpim:write"})
"""conversations.open's scope by what it opens.  It opens DMs and group DMs only; given a
channel it answers ``channel_not_found`` whatever the token holds."""


# --------------------------------------------------------------------------------------
# Errors and the method registry
# --------------------------------------------------------------------------------------


class SlackError(Exception):
    """A Web API error answer: ``{"ok": false, "error": error, **extra}`` with HTTP 200.

    ``extra`` carries what Slack adds to some errors, e.g. ``response_metadata.messages``
    explaining an ``invalid_arguments`` or ``invalid_blocks``.
    """

    def __init__(self, error: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.extra: JSON = dict(extra or {})


HandlerFn = Callable[["SlackEmulator", "_Args"], JSON]


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
# Request arguments
# --------------------------------------------------------------------------------------


class _Args:
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


# --------------------------------------------------------------------------------------
# Small helpers: timestamps, cursors, validation
# --------------------------------------------------------------------------------------


def _ts_key(ts: str) -> tuple[int, int]:
    """Sort key of a Slack ts ("1712345678.000100"): numeric, not lexicographic."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(6, "0")[:6] or 0)


def _within(ts: str, oldest: str | None, latest: str | None, inclusive: bool) -> bool:
    """Whether ``ts`` falls between ``oldest`` and ``latest``, both exclusive unless
    ``inclusive`` -- the rule conversations.history and .replies apply."""
    key = _ts_key(ts)
    if oldest is not None:
        bound = _ts_key(oldest)
        if key < bound or (key == bound and not inclusive):
            return False
    if latest is not None:
        bound = _ts_key(latest)
        if key > bound or (key == bound and not inclusive):
            return False
    return True


def _encode_cursor(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode()


def _decode_cursor(cursor: str, kind: str, error: str = "invalid_cursor") -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackError(error) from None
    prefix, sep, value = decoded.partition(":")
    if prefix != kind or not sep or not value:
        raise SlackError(error)
    return value


def _text_of(obj: Any) -> str | None:
    """The ``text`` of a text object (``{"type": "plain_text", "text": ...}``), if any."""
    text = obj.get("text") if isinstance(obj, dict) else None
    return text if isinstance(text, str) else None


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _block_problems(blocks: list[Any], pointer: str) -> list[str]:
    """Structural and length problems of a block list, as Slack's ``[ERROR] ...`` lines."""
    problems: list[str] = []
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"{pointer}/{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{where}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{where}/block_id]")
            block_ids.add(block_id)
        kind = block["type"]
        text = _text_of(block.get("text"))
        if kind == "section":
            if text is not None and len(text) > MAX_SECTION_TEXT_CHARS:
                problems.append(_too_long(MAX_SECTION_TEXT_CHARS, f"{where}/text/text"))
            fields = block.get("fields") or []
            if len(fields) > MAX_SECTION_FIELDS:
                problems.append(
                    f"[ERROR] no more than {MAX_SECTION_FIELDS} items allowed "
                    f"[json-pointer:{where}/fields]"
                )
            for i, item in enumerate(fields):
                item_text = _text_of(item)
                if item_text is not None and len(item_text) > MAX_SECTION_FIELD_CHARS:
                    problems.append(_too_long(MAX_SECTION_FIELD_CHARS, f"{where}/fields/{i}/text"))
        elif kind == "header":
            if text is not None and len(text) > MAX_HEADER_TEXT_CHARS:
                problems.append(_too_long(MAX_HEADER_TEXT_CHARS, f"{where}/text/text"))
        elif kind == "input":
            problems.extend(_input_block_problems(block, where))
    return problems


def _input_block_problems(block: JSON, where: str) -> list[str]:
    problems: list[str] = []
    for part in ("label", "hint"):
        text = _text_of(block.get(part))
        if text is not None and len(text) > MAX_INPUT_LABEL_CHARS:
            problems.append(_too_long(MAX_INPUT_LABEL_CHARS, f"{where}/{part}/text"))
    element = block.get("element")
    if not isinstance(element, dict):
        problems.append(f"[ERROR] missing required field: element [json-pointer:{where}]")
        return problems
    max_length = element.get("max_length")
    if isinstance(max_length, int) and max_length > MAX_PLAIN_TEXT_INPUT_LENGTH:
        problems.append(
            f"[ERROR] must be at most {MAX_PLAIN_TEXT_INPUT_LENGTH} "
            f"[json-pointer:{where}/element/max_length]"
        )
    options = element.get("options")
    if isinstance(options, list) and len(options) > MAX_SELECT_OPTIONS:
        problems.append(
            f"[ERROR] no more than {MAX_SELECT_OPTIONS} items allowed "
            f"[json-pointer:{where}/element/options]"
        )
    return problems


def _message_block_problems(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["[ERROR] must be an array [json-pointer:/blocks]"]
    problems = []
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        problems.append(
            f"[ERROR] no more than {MAX_MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]"
        )
    return problems + _block_problems(blocks, "/blocks")


def _view_problems(view: Any, allowed_types: Iterable[str]) -> list[str]:
    """What Slack's view schema check would object to, as ``[ERROR] ...`` lines."""
    if not isinstance(view, dict):
        return ["[ERROR] failed to match all allowed schemas [json-pointer:/view]"]
    problems: list[str] = []
    allowed = sorted(allowed_types)
    view_type = view.get("type")
    if view_type not in allowed:
        problems.append(f"[ERROR] must be one of {allowed} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
        blocks = []
    elif len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(
            f"[ERROR] no more than {MAX_VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]"
        )
    problems.extend(_block_problems(blocks, "/view/blocks"))
    if view_type == "modal":
        if view.get("title") is None:
            problems.append("[ERROR] missing required field: title [json-pointer:/view]")
        for part in ("title", "submit", "close"):
            if view.get(part) is None:
                continue
            text = _text_of(view[part])
            if text is None or view[part].get("type") != "plain_text":
                problems.append(
                    f"[ERROR] must be a plain_text text object [json-pointer:/view/{part}]"
                )
            elif len(text) > MAX_VIEW_BUTTON_CHARS:
                problems.append(_too_long(MAX_VIEW_BUTTON_CHARS, f"/view/{part}/text"))
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            problems.append(
                "[ERROR] must provide a submit property when using input blocks "
                "[json-pointer:/view]"
            )
    metadata = view.get("private_metadata")
    if isinstance(metadata, str) and len(metadata) > MAX_PRIVATE_METADATA_CHARS:
        problems.append(_too_long(MAX_PRIVATE_METADATA_CHARS, "/view/private_metadata"))
    callback_id = view.get("callback_id")
    if isinstance(callback_id, str) and len(callback_id) > MAX_CALLBACK_ID_CHARS:
        problems.append(_too_long(MAX_CALLBACK_ID_CHARS, "/view/callback_id"))
    return problems


def _invalid(error: str, problems: list[str]) -> SlackError:
    """A validation error with Slack's ``response_metadata.messages`` explanation."""
    return SlackError(error, {"response_metadata": {"messages": problems}})


def _message_metadata(args: _Args) -> JSON | None:
    """The ``metadata`` argument of chat.postMessage / chat.update, or None when absent.

    Slack's message metadata (docs.slack.dev, "Message metadata") is an object with a
    string ``event_type`` and an object ``event_payload``, both required; form callers
    send it as a JSON string, slack_sdk as a JSON object -- both are accepted.  Anything
    else (not JSON, not an object, a missing or empty ``event_type``, a payload that is
    not an object) answers ``invalid_metadata_format``.  Only the two fields are kept.
    """
    value = args.json_value("metadata", error="invalid_metadata_format")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise SlackError("invalid_metadata_format")
    return {"event_type": event_type, "event_payload": payload}


def _listed(messages: Iterable[JSON], include_metadata: bool) -> list[JSON]:
    """Copies of stored messages as conversations.history / .replies list them: message
    ``metadata`` only when the call asked for it with ``include_all_metadata``."""
    listed = copy.deepcopy(list(messages))
    if not include_metadata:
        for message in listed:
            message.pop("metadata", None)
    return listed


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


@dataclass
class _User:
    id: str
    name: str
    real_name: str
    tz: str
    is_bot: bool
    deleted: bool
    email: str | None = None
    bot_id: str | None = None
    updated: int = 0  # set from the emulator's clock when created
    erased: bool = False  # gone from what the bot can see: users.info answers user_not_found


@dataclass
class _Pin:
    created: int
    created_by: str


@dataclass
class _Channel:
    """A conversation: public or private channel, DM (``is_im``) or group DM (``is_mpim``).

    ``messages`` maps ts -> message dict, stored exactly in the shape the API returns.
    """

    id: str
    name: str
    is_private: bool
    is_archived: bool = False
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    members: list[str] = field(default_factory=list)
    created: int = 0  # set from the emulator's clock when created
    messages: dict[str, JSON] = field(default_factory=dict)
    pins: dict[str, _Pin] = field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        return not (self.is_private or self.is_im or self.is_mpim)

    @property
    def kind(self) -> ConversationKind:
        """Which scope family (channels, groups, im, mpim) guards this conversation."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "private" if self.is_private else "public"


@dataclass
class _Trigger:
    issued_at: float
    user: str | None
    used: bool = False


@dataclass
class _View:
    id: str
    payload: JSON
    user: str | None
    hash: str
    root_view_id: str
    previous_view_id: str | None = None


@dataclass
class _File:
    id: str
    filename: str
    length: int
    created: int
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _SocketConnection:
    """One Socket Mode websocket and the envelopes sent on it still waiting for an ack."""

    id: str
    ws: web.WebSocketResponse
    pending: dict[str, asyncio.Future[JSON]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fault:
    status: int
    error: str | None
    retry_after: int


@dataclass
class _Chaos:
    """Seeded random faults: each target (method, or the upload URL) draws from its own
    stream, seeded by (seed, target), so one method's sequence of faults does not depend on
    how its calls interleave with other methods' calls."""

    seed: int
    rate_limited: float
    server_error: float
    slow: float
    slow_seconds: float
    retry_after: int
    exempt: frozenset[str]
    uploads: bool
    streams: dict[str, random.Random] = field(default_factory=dict)

    def applies_to(self, target: str) -> bool:
        return target not in self.exempt and (target != UPLOAD_TARGET or self.uploads)

    def draw(self, target: str) -> str | None:
        """None (answer normally), "rate_limited", "server_error" or "slow"."""
        stream = self.streams.get(target)
        if stream is None:
            stream = self.streams[target] = random.Random(f"{self.seed}/{target}")
        roll = stream.random()
        for fault, rate in (("rate_limited", self.rate_limited), ("server_error", self.server_error),
                            ("slow", self.slow)):
            if roll < rate:
                return fault
            roll -= rate
        return None


@dataclass(frozen=True)
class _Reply:
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


def _is_reply(message: Mapping[str, Any]) -> bool:
    thread_ts = message.get("thread_ts")
    return thread_ts is not None and thread_ts != message["ts"]


def _shows_in_history(message: Mapping[str, Any]) -> bool:
    """conversations.history lists top-level messages and broadcast thread replies only."""
    return not _is_reply(message) or message.get("subtype") == "thread_broadcast"


# --------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------


class SlackEmulator:
    """A Slack workspace plus a Web API server on ``127.0.0.1``.

    Point ``AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)`` at it.
    Tests set state up with :meth:`add_user` / :meth:`add_channel`, act as humans with
    :meth:`post_user_message` and friends, and inspect what the bot did with
    :meth:`messages`, :meth:`messages_in_dm`, :meth:`views`, :attr:`calls`...

    The bot token holds exactly the bot scopes of manifest.yml unless ``scopes`` says
    otherwise; a method whose scope is not held answers ``missing_scope`` as Slack does.
    """

    scopes: tuple[str, ...]
    """The bot token's scopes (default: manifest.yml's).  A test may replace them."""

    app_scopes: tuple[str, ...]
    """The app-level token's scopes (default: ``connections:write``)."""

    trigger_lifetime: float
    """Seconds a trigger id stays usable (Slack: 3).  Tests may shorten it."""

    announce_joins: bool
    """Post Slack's ``channel_join`` message when the bot joins a channel.  Real Slack does;
    off by default so message counts in tests see only what the bot itself posted."""

    def __init__(
        self,
        *,
        team_id: str = "T0EMULATOR",
        team_domain: str = "emulated",
        bot_user_id: str = "UBOT000001",
        bot_id: str = "BBOT000001",
        bot_token: str = "xoxb-emulator-token",
        app_token: str = "xapp-emulator-token",
        scopes: Iterable[str] | None = None,
        app_scopes: Iterable[str] = APP_TOKEN_SCOPES,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes is a list of scope names, not one string")
        self.scopes = manifest_bot_scopes() if scopes is None else tuple(scopes)
        self.app_scopes = tuple(app_scopes)
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.app_token = app_token
        self.app_id = "A0EMULATOR"
        self.trigger_lifetime = DEFAULT_TRIGGER_LIFETIME
        self.announce_joins = False

        self.calls: list[JSON] = []
        """Every Web API call: method, args (token removed), status, ok, error."""

        self.in_flight: dict[str, int] = {}
        """Web API calls received and not answered yet, by method (a call sleeping in an
        injected delay is in flight).  A client killed meanwhile does not stop the call:
        Slack acts on a request it has received, as here."""

        self.clock: Clock = clock or SystemClock()
        """Slack's idea of now: the ``ts`` of new messages, pin and file times.  Tests and the
        demo share one clock between the emulator and the bot, so the times of messages and
        the bot's idea of now agree, as they do in production; a test that drives the bot's
        clock ahead (``sweep --at``) moves Slack's with it."""

        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._ephemerals: list[JSON] = []
        self._responses: list[JSON] = []
        self._hooks: set[str] = set()
        self._views: dict[str, _View] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id of their App Home
        self._triggers: dict[str, _Trigger] = {}
        self._files: dict[str, _File] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._chaos: _Chaos | None = None
        self.chaos_log: list[JSON] = []
        """Every fault chaos injected, in order: target (method or "(upload)"), fault
        ("rate_limited", "server_error", "slow"), seed."""
        self.chaos_calls = 0
        """How many requests chaos drew for (calls of exempt methods not counted)."""
        self._ids = itertools.count(1)
        self._last_ts_us = 0

        self.socket_acks: list[JSON] = []
        """Every ack a Socket Mode client sent, in arrival order, as received."""

        self._socket_tickets: set[str] = set()  # from apps.connections.open, each good once
        self._sockets: list[_SocketConnection] = []  # open connections, oldest first
        self._socket_connected = asyncio.Event()  # set while at least one is open

        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0
        self._stopping = asyncio.Event()

        self.add_user(bot_user_id, "emulated-bot", is_bot=True, real_name="Emulated Bot")
        self._users[bot_user_id].bot_id = bot_id

    # ----------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and serve; ``port=0`` picks a free port (read it from :attr:`base_url`)."""
        if self._runner is not None:
            raise RuntimeError("SlackEmulator already started")
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/_hooks/response/{hook_id}", self._handle_response_url)
        app.router.add_post("/_upload/{file_id}", self._handle_upload)
        app.router.add_get("/_files/{file_id}/{filename}", self._handle_download)
        app.router.add_get(SOCKET_PATH, self._handle_socket)
        # A short shutdown_timeout: stop() must not wait a minute for a delayed call.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._stopping.clear()
        self._host, self._port = runner.addresses[0][:2]
        logger.debug("Slack emulator listening on %s", self.base_url)

    async def stop(self) -> None:
        """Stop serving; calls sleeping in an injected delay are woken and answered, Socket
        Mode websockets are closed with a close handshake (code 1001, going away)."""
        if self._runner is None:
            return
        self._stopping.set()
        await self._close_sockets()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        logger.debug("Slack emulator stopped")

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._runner is None:
            raise RuntimeError("SlackEmulator is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        """Web API base URL for ``AsyncWebClient(base_url=...)``; ends with ``/`` as
        slack_sdk requires (it appends the method name verbatim)."""
        return f"{self.base_url}/api/"

    # ----------------------------------------------------------------- state setup

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        tz: str = "UTC",
        is_bot: bool = False,
        deleted: bool = False,
        real_name: str | None = None,
        email: str | None = None,
    ) -> JSON:
        """Create a workspace member; returns the user object users.info would give.

        A person has an email (default ``<name>@example.com``), a bot none; users.info
        shows it only to a token with ``users:read.email``.
        """
        if user_id in self._users:
            raise ValueError(f"user {user_id} already exists")
        if user_id[:1] not in ("U", "W"):
            raise ValueError(f"user ids start with U or W, got {user_id!r}")
        ZoneInfo(tz)  # fail here, not in users.info, on a misspelt time zone
        if email is None and not is_bot:
            email = f"{name}@example.com"
        self._users[user_id] = _User(
            user_id, name, real_name if real_name is not None else name, tz, is_bot, deleted,
            email, updated=self.unix_now(),
        )
        return self._user_json(self._users[user_id])

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        members: Iterable[str] = (),
        is_archived: bool = False,
    ) -> JSON:
        """Create a conversation; returns the object conversations.info would give.

        ``C`` ids are channels (public unless ``is_private``), ``G`` ids private channels,
        ``D`` ids DMs between the bot and the one human in ``members``.  The bot is a
        member only when ``members`` lists :attr:`bot_user_id`.
        """
        if channel_id in self._channels:
            raise ValueError(f"channel {channel_id} already exists")
        members = list(dict.fromkeys(members))
        for member in members:
            self._require_user(member)
        prefix = channel_id[:1]
        if prefix == "D":
            humans = [m for m in members if m != self.bot_user_id]
            if len(humans) != 1:
                raise ValueError("a D channel needs exactly one member besides the bot")
            channel = _Channel(
                channel_id, name, is_private=True, is_im=True, im_user=humans[0],
                members=[self.bot_user_id, humans[0]],
            )
        elif prefix in ("C", "G"):
            if prefix == "G" and not is_private:
                raise ValueError(f"G ids are private channels; pass is_private=True ({channel_id})")
            channel = _Channel(
                channel_id, name, is_private=is_private, is_archived=is_archived, members=members
            )
        else:
            raise ValueError(f"channel ids start with C, G or D, got {channel_id!r}")
        channel.created = self.unix_now()
        self._channels[channel_id] = channel
        return self._conversation_json(channel)

    def deactivate_user(self, user_id: str) -> JSON:
        """Deactivate a member, as a workspace admin does; returns their users.info object.

        Like ``add_user(..., deleted=True)`` but for someone who already exists (and may
        already have a DM with the bot): users.info then says ``deleted: true``,
        conversations.open answers ``user_disabled``, chat.postMessage to their user id
        works only into an existing DM (see the chat.postMessage handler).
        """
        user = self._require_user(user_id)
        if user_id == self.bot_user_id:
            raise ValueError("the emulated bot cannot be deactivated")
        user.deleted = True
        user.updated = self.unix_now()
        return self._user_json(user)

    # Changes to the workspace that Slack announces with an event (the driver sends it).

    def change_profile(
        self, user_id: str, *, name: str | None = None, real_name: str | None = None, tz: str | None = None
    ) -> JSON:
        """A member edits their profile; returns the users.info object a ``user_change`` carries.

        The emulator keeps one ``name`` for handle and display name, so ``name`` changes both.
        """
        user = self._require_user(user_id)
        if tz is not None:
            ZoneInfo(tz)
            user.tz = tz
        user.name = user.name if name is None else name
        user.real_name = user.real_name if real_name is None else real_name
        user.updated = max(user.updated + 1, self.unix_now())  # Slack's `updated` only grows
        return self._user_json(user)

    def erase_user(self, user_id: str) -> None:
        """The member is gone as far as the bot can see (an erased account, a Slack Connect
        member whose organisation left): users.info answers ``user_not_found`` from now on."""
        self._require_user(user_id).erased = True

    def rename_channel(self, channel_id: str, name: str) -> JSON:
        """Rename a channel, as a member does; returns its conversations.info object."""
        channel = self._require_channel(channel_id)
        if channel.is_im:
            raise ValueError("a DM has no name to change")
        channel.name = name
        return self._conversation_json(channel)

    def open_dm(self, user: str) -> str:
        """Id of the bot's DM with ``user``, creating it if needed (as conversations.open).

        A set-up helper: unlike the Web API it opens DMs with deactivated users and bots too.
        """
        self._require_user(user)
        existing = self._existing_dm(user)
        if existing is not None:
            return existing.id
        channel_id = self._new_id("D")
        self._channels[channel_id] = _Channel(
            channel_id, channel_id, is_private=True, is_im=True, im_user=user,
            members=[self.bot_user_id, user], created=self.unix_now(),
        )
        return channel_id

    # ----------------------------------------------------------------- acting as humans

    def unix_now(self) -> int:
        """Whole seconds since the epoch on :attr:`clock`, as Slack gives ``created`` times."""
        return int(self.clock.now().timestamp())

    def new_ts(self) -> str:
        """A fresh message ts from :attr:`clock`, strictly greater than every earlier one."""
        now = self.clock.now()
        now_us = int(now.timestamp()) * 1_000_000 + now.microsecond
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def post_user_message(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        files: list[JSON] | None = None,
        subtype: str | None = None,
    ) -> JSON:
        """A human posts (joining the channel if needed); returns the stored message.

        A reply (``thread_ts``) updates the parent's reply_count, reply_users and
        latest_reply, as Slack does; a ts of a reply threads under that reply's parent.
        """
        conv = self._require_channel(channel)
        self._require_user(user)
        if conv.is_archived:
            raise ValueError(f"channel {channel} is archived")
        if user not in conv.members:
            if not conv.is_public:
                raise ValueError(f"{user} is not a member of private conversation {channel}")
            conv.members.append(user)
        message: JSON = {"type": "message", "user": user, "text": text, "ts": self.new_ts(),
                         "team": self.team_id}
        if subtype is not None:
            message["subtype"] = subtype
        if files:
            message["files"] = copy.deepcopy(files)
        if thread_ts is not None:
            parent = conv.messages.get(thread_ts)
            if parent is None:
                raise ValueError(f"no message {thread_ts} in {channel} to reply to")
            self._attach_to_thread(conv, message, parent.get("thread_ts", thread_ts))
        else:
            conv.messages[message["ts"]] = message
        return copy.deepcopy(message)

    def edit_user_message(self, channel: str, ts: str, text: str) -> tuple[JSON, JSON]:
        """Edit a message's text; returns (new message with ``edited``, previous message)."""
        message = self._require_message(channel, ts)
        previous = copy.deepcopy(message)
        message["text"] = text
        message["edited"] = {"user": message.get("user"), "ts": self.new_ts()}
        return copy.deepcopy(message), previous

    def delete_message(self, channel: str, ts: str) -> JSON:
        """Delete a message as its author would; returns the message as it was."""
        message = self._require_message(channel, ts)
        previous = copy.deepcopy(message)
        self._remove_message(self._channels[channel], message)
        return previous

    def add_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """``user`` reacts with ``:name:``; reacting twice with the same name is a no-op."""
        message = self._require_message(channel, ts)
        self._require_user(user)
        reactions: list[JSON] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if user not in reaction["users"]:
            reaction["users"].append(user)
            reaction["count"] = len(reaction["users"])

    def remove_reaction(self, channel: str, ts: str, user: str, name: str) -> None:
        """Undo :meth:`add_reaction`; a reaction nobody holds any more disappears."""
        message = self._require_message(channel, ts)
        reactions: list[JSON] = message.get("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name and user in reaction["users"]:
                reaction["users"].remove(user)
                reaction["count"] = len(reaction["users"])
        message["reactions"] = [r for r in reactions if r["count"] > 0]
        if not message["reactions"]:
            del message["reactions"]

    def pin_message(self, channel: str, ts: str, user: str) -> None:
        """``user`` pins a message by hand (no event is sent; the bot does not subscribe)."""
        conv = self._require_channel(channel)
        message = self._require_message(channel, ts)
        self._require_user(user)
        if ts not in conv.pins:
            conv.pins[ts] = _Pin(self.unix_now(), user)
            message["pinned_to"] = [channel]

    # ----------------------------------------------------------------- inspection

    def messages(self, channel: str) -> list[JSON]:
        """Every message of ``channel``, top-level and replies, in ts order (copies)."""
        conv = self._require_channel(channel)
        return [copy.deepcopy(m) for m in self._sorted(conv.messages.values())]

    def messages_in_dm(self, user_id: str) -> list[JSON]:
        """Every message of the bot's DM with ``user_id`` -- the bot's and theirs, thread
        replies included -- in ts order, as stored (blocks, metadata...; copies).

        Empty when there is no such DM yet; unlike ``messages(open_dm(user))`` this never
        opens one.
        """
        self._require_user(user_id)
        dm = self._existing_dm(user_id)
        return [] if dm is None else self.messages(dm.id)

    def message(self, channel: str, ts: str) -> JSON | None:
        conv = self._require_channel(channel)
        message = conv.messages.get(ts)
        return copy.deepcopy(message) if message is not None else None

    def pins(self, channel: str) -> list[str]:
        """Timestamps of the messages pinned in ``channel``, in pinning order."""
        return list(self._require_channel(channel).pins)

    def ephemerals(self, channel: str | None = None) -> list[JSON]:
        """chat.postEphemeral calls that succeeded: channel, user, text, blocks."""
        return [copy.deepcopy(e) for e in self._ephemerals
                if channel is None or e["channel"] == channel]

    def responses(self) -> list[JSON]:
        """JSON bodies POSTed to URLs from :meth:`new_response_url`, in order."""
        return copy.deepcopy(self._responses)

    def new_response_url(self) -> str:
        """A URL on this server that records POSTed JSON like Slack's response_url."""
        hook_id = secrets.token_hex(8)
        self._hooks.add(hook_id)
        return f"{self.base_url}/_hooks/response/{hook_id}"

    def views(self) -> list[JSON]:
        """Every view opened, pushed or published, latest state, in creation order.

        Each item is the view object as views.* returned it (id, type, title, blocks,
        hash...) plus ``user`` (None for views.open/push: the trigger's user is unknown
        unless given to :meth:`issue_trigger_id`) and ``view`` (the same object, nested,
        for callers who prefer ``item["view"]["blocks"]``).
        """
        result = []
        for view in self._views.values():
            rendered = self._view_json(view)
            result.append({**rendered, "user": view.user, "view": copy.deepcopy(rendered)})
        return result

    @property
    def channels(self) -> dict[str, JSON]:
        """Snapshot of every conversation: id -> its conversations.info object plus
        ``members`` (user ids, in joining order)."""
        return {c.id: {**self._conversation_json(c), "members": list(c.members)}
                for c in self._channels.values()}

    @property
    def users(self) -> dict[str, JSON]:
        """Snapshot of every user, the bot included: id -> its users.info object."""
        return {u.id: self._user_json(u) for u in self._users.values()}

    def calls_to(self, method: str) -> list[JSON]:
        """The entries of :attr:`calls` for one Web API method."""
        return [c for c in self.calls if c["method"] == method]

    def uploaded_files(self) -> list[JSON]:
        """Files whose bytes were uploaded: id, filename, title, content, channel."""
        return [
            {"id": f.id, "filename": f.filename, "title": f.title, "content": f.content,
             "channel": f.channels[0] if f.channels else None}
            for f in self._files.values() if f.content is not None
        ]

    # ----------------------------------------------------------------- fault injection

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        status 429 answers ``ratelimited`` with ``Retry-After: retry_after`` (default 1);
        status 5xx answers a short text body; any other status answers
        ``{"ok": false, "error": error}`` (``error`` required).
        """
        self._check_injectable(method, times)
        if status != 429 and status < 500 and error is None:
            raise ValueError(f"status {status} needs an error name")
        fault = _Fault(status, error, 1 if retry_after is None else retry_after)
        self._faults.setdefault(method, deque()).extend([fault] * times)

    def clear_faults(self, method: str) -> None:
        """Forget the injected failures still queued for `method` (Slack recovers)."""
        self._faults.pop(method, None)

    def delay(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` sleep ``seconds`` before answering."""
        self._check_injectable(method, times)
        self._delays.setdefault(method, deque()).extend([seconds] * times)

    def chaos(
        self,
        *,
        seed: int,
        rate_limited: float = 0.10,
        server_error: float = 0.05,
        slow: float = 0.05,
        slow_seconds: float = 0.5,
        retry_after: int = 1,
        exempt: Iterable[str] = TRIGGER_BOUND_METHODS,
        uploads: bool = True,
    ) -> None:
        """Answer a random share of Web API calls badly, reproducibly, until :meth:`calm`.

        Each call (and each POST to an upload URL, unless ``uploads`` is False) draws once:
        with probability ``rate_limited`` it is answered 429 ``ratelimited`` with
        ``Retry-After: retry_after`` (kept small so tests stay fast; Slack's are often
        longer), with ``server_error`` HTTP 500, with ``slow`` it waits ``slow_seconds``
        and is then answered normally; otherwise it is answered normally at once.  Every
        target draws from its own stream seeded by ``(seed, target)``: the same seed gives
        the n-th call of a method the same fate whatever the other methods do.  Scripted
        :meth:`fail` and :meth:`delay` entries come first and do not draw.

        Every fault happens *before* the call has any effect: a 429 or 500 here means
        nothing was posted, uploaded or changed, so a retry is always safe.  Real Slack
        promises that for 429 only; a 500 (or a timeout) may come after the message was
        posted.  The bot's client (bot/slack.py) still retries 500/503 up to 3 times, as
        slack_sdk's AsyncServerErrorRetryHandler does, so against real Slack a 500 on a
        non-idempotent call can duplicate it; a timed-out call is never retried by the
        client (slack_sdk raises TimeoutError, which its connection-error handler does not
        match).  ``slow_seconds`` must stay below the client's timeout for the same reason:
        a call the client gave up on would still take effect here, as it can in Slack.

        ``exempt`` methods never draw.  By default they are the trigger-bound ones
        (views.open, views.push): Slack accepts a trigger id once and for 3 s, so after a
        500 that came after the view opened a retry gets ``trigger_exchanged``, and a 429's
        wait can outlast the trigger; no retry can help, the person presses again.  Soak
        tests leave them out and test that answer on its own.
        """
        for name, rate in (("rate_limited", rate_limited), ("server_error", server_error),
                           ("slow", slow)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be a probability, got {rate}")
        if rate_limited + server_error + slow > 1:
            raise ValueError("the fault rates add up to more than 1")
        exempt = frozenset(exempt)
        unknown = sorted(m for m in exempt if m not in _REGISTRY)
        if unknown:
            raise ValueError(f"{unknown} are not Web API methods the emulator implements")
        self._chaos = _Chaos(seed, rate_limited, server_error, slow, slow_seconds, retry_after,
                             exempt, uploads)

    def calm(self) -> None:
        """Turn chaos off: every later call is answered normally (scripted faults aside).
        :attr:`chaos_log` and :attr:`chaos_calls` keep what happened."""
        self._chaos = None

    @property
    def chaos_seed(self) -> int | None:
        """The seed of the chaos in force, or None when calm."""
        return self._chaos.seed if self._chaos is not None else None

    def chaos_counts(self) -> dict[str, int]:
        """How many requests chaos drew for, and how many faults of each kind it injected."""
        counts = {"calls": self.chaos_calls, "rate_limited": 0, "server_error": 0, "slow": 0}
        for entry in self.chaos_log:
            counts[entry["fault"]] += 1
        return counts

    async def _chaos_fault(self, target: str) -> _Reply | None:
        """Draw for one request: an error reply, or None after an optional slow pause."""
        chaos = self._chaos
        if chaos is None or not chaos.applies_to(target):
            return None
        self.chaos_calls += 1
        fault = chaos.draw(target)
        if fault is None:
            return None
        self.chaos_log.append({"target": target, "fault": fault, "seed": chaos.seed})
        if fault == "slow":
            await self._pause(chaos.slow_seconds)
            return None
        if fault == "rate_limited":
            return self._fault_reply(_Fault(429, None, chaos.retry_after))
        return _Reply(500, "500 upstream error (chaos)")

    @staticmethod
    def _check_injectable(method: str, times: int) -> None:
        """Refuse a misspelt method name: the fault would silently never fire."""
        if method not in _REGISTRY:
            raise ValueError(f"{method} is not a Web API method the emulator implements")
        if times < 1:
            raise ValueError("times must be at least 1")

    def issue_trigger_id(self, *, user: str | None = None) -> str:
        """A trigger id views.open/push accept once, within :attr:`trigger_lifetime`.

        ``user`` (optional) is recorded as the user of the views it opens.
        """
        trigger_id = f"{int(time.time())}.{next(self._ids)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(time.monotonic(), user)
        return trigger_id

    # ----------------------------------------------------------------- Socket Mode

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode websockets are open (Slack allows an app up to 10)."""
        return len(self._sockets)

    async def wait_for_socket_connection(self, timeout: float = 10.0) -> None:
        """Return once a Socket Mode client has connected and been sent ``hello``;
        ``TimeoutError`` if none has within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._socket_connected.wait(), timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"no Socket Mode client connected within {timeout}s") from None

    async def send_socket_envelope(
        self,
        type: str,
        payload: JSON,
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 10.0,
    ) -> JSON | None:
        """Deliver ``payload`` over Socket Mode as Slack does, and wait for its ack.

        ``type`` is ``events_api`` (``payload`` is an ``event_callback`` envelope),
        ``slash_commands`` (the slash command's fields) or ``interactive`` (a block action,
        shortcut or view submission).  The envelope goes to the newest open connection;
        the answer is the client's ack, ``{"envelope_id": ..., "payload": ...}`` with
        ``payload`` present when the app answered with a body (bolt's ``ack(text=...)``),
        which Slack uses only when ``accepts_response_payload``.

        Raises ``RuntimeError`` when no client is connected, ``ConnectionError`` when the
        connection closes before the ack, ``TimeoutError`` when no ack comes in ``timeout``
        seconds -- where Slack would redeliver with ``retry_attempt`` + 1 (events only),
        a test decides itself whether to send again.
        """
        if type not in SOCKET_ENVELOPE_TYPES:
            raise ValueError(f"Socket Mode envelope types are {sorted(SOCKET_ENVELOPE_TYPES)}, "
                             f"not {type!r}")
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected; "
                               "await wait_for_socket_connection() first")
        conn = self._sockets[-1]
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": type, "payload": payload,
                    "accepts_response_payload": accepts_response_payload,
                    "retry_attempt": retry_attempt, "retry_reason": retry_reason}
        ack: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        conn.pending[envelope_id] = ack
        try:
            await conn.ws.send_str(json.dumps(envelope))
            logger.debug("socket %s <- %s envelope %s", conn.id, type, envelope_id)
            return await asyncio.wait_for(ack, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"no ack for {type} envelope {envelope_id} within {timeout}s") \
                from None
        finally:
            conn.pending.pop(envelope_id, None)

    # ----------------------------------------------------------------- HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args, token = await self._read_call(request)
        except SlackError as exc:
            args, token = {}, None
            reply = _Reply(200, {"ok": False, "error": exc.error})
        else:
            self.in_flight[method] = self.in_flight.get(method, 0) + 1
            try:
                reply = await self._answer(method, args, token)
            finally:
                self.in_flight[method] -= 1
        self.calls.append({"method": method, "args": args, "status": reply.status,
                           "ok": reply.status == 200 and reply.error is None,
                           "error": reply.error})
        logger.debug("%s %s -> %s %s", method, args, reply.status, reply.error or "ok")
        return reply.to_response()

    async def _read_call(self, request: web.Request) -> tuple[JSON, str | None]:
        """Merge query, form and JSON arguments; take the token out of them."""
        args: JSON = dict(request.query)
        if request.content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise SlackError("invalid_json") from None
                if not isinstance(body, dict):
                    raise SlackError("invalid_json")
                args.update(body)
        elif request.method == "POST":
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        return args, token

    async def _answer(self, method: str, args: JSON, token: str | None) -> _Reply:
        """Delay, injected fault, authentication, then the handler."""
        delays = self._delays.get(method)
        if delays:
            await self._pause(delays.popleft())
        faults = self._faults.get(method)
        if faults:
            return self._fault_reply(faults.popleft())
        chaotic = await self._chaos_fault(method)
        if chaotic is not None:
            return chaotic
        try:
            spec = self._authenticate(method, token)
            self._authorize(spec, args)
            # A deep copy: what handlers store must not alias what `calls` records.
            body = spec.handler(self, _Args(copy.deepcopy(args)))
        except SlackError as exc:
            if method in _REGISTRY and exc.error not in possible_errors(method):
                logger.error("emulator bug: %s raised undeclared error %s", method, exc.error)
                return _Reply(500, f"emulator bug: {method} raised undeclared {exc.error}")
            return _Reply(200, {"ok": False, "error": exc.error, **exc.extra})
        return _Reply(200, {"ok": True, **body})

    def _authenticate(self, method: str, token: str | None) -> ApiMethod:
        if not token:
            raise SlackError("not_authed")
        kinds: dict[str, TokenType] = {self.bot_token: "bot", self.app_token: "app"}
        if token not in kinds:
            raise SlackError("invalid_auth")
        spec = _REGISTRY.get(method)
        if spec is None:
            raise SlackError("unknown_method")
        if kinds[token] != spec.token_type:
            raise SlackError("not_allowed_token_type")
        return spec

    def _authorize(self, spec: ApiMethod, args: JSON) -> None:
        """``missing_scope`` unless the token holds the scope the call needs, answered as
        Slack does: HTTP 200 with ``needed`` (the scope) and ``provided`` (every scope the
        token holds, comma-separated)."""
        needed = self._needed_scope(spec, _Args(args))
        granted = self.scopes if spec.token_type == "bot" else self.app_scopes
        if needed is not None and needed not in granted:
            raise SlackError("missing_scope", {"needed": needed, "provided": ",".join(granted)})

    def _needed_scope(self, spec: ApiMethod, args: _Args) -> str | None:
        """The scope this call needs; for conversations.*, by the conversation's type.

        A conversation the emulator does not know needs nothing here: the handler answers
        ``channel_not_found`` (or ``users_list_not_supplied``) for it.
        """
        if spec.scope is None or isinstance(spec.scope, str):
            return spec.scope
        kind = self._conversation_kind(args)
        return None if kind is None else spec.scope.get(kind)

    def _conversation_kind(self, args: _Args) -> ConversationKind | None:
        """The type of the conversation a call is about: its ``channel``, or for
        conversations.open its ``users`` (one person a DM, several a group DM)."""
        channel_id = args.text("channel")
        if channel_id is not None:
            channel = self._channels.get(channel_id)
            return None if channel is None else channel.kind
        users = {u.strip() for u in (args.text("users") or "").split(",") if u.strip()}
        humans = users - {self.bot_user_id}
        if not humans:
            return None
        return "im" if len(humans) == 1 else "mpim"

    @staticmethod
    def _fault_reply(fault: _Fault) -> _Reply:
        if fault.status == 429:
            return _Reply(429, {"ok": False, "error": "ratelimited"},
                          {"Retry-After": str(fault.retry_after)})
        if fault.status >= 500:
            return _Reply(fault.status, f"{fault.status} upstream error (injected)")
        return _Reply(fault.status, {"ok": False, "error": fault.error})

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        if hook_id not in self._hooks:
            return web.Response(status=404, text="no_active_hooks")
        try:
            body = json.loads(await request.read())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self._responses.append(body)
        logger.debug("response_url %s <- %s", hook_id, body)
        return web.json_response({"ok": True})

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL of files.getUploadURLExternal.

        slack_sdk's files_upload_v2 POSTs the raw bytes; other clients send multipart
        with a ``file`` (or ``filename``) part.  Slack answers ``OK - <length>`` as text.
        """
        file = self._files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="file_not_found")
        # The whole request is read before chaos draws: a fault must not cut it short.
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = form.get("file", form.get("filename"))
            if part is None:
                return web.Response(status=400, text="no file part")
            if isinstance(part, str):
                content = part.encode()
            elif isinstance(part, (bytes, bytearray)):
                content = bytes(part)
            else:
                content = part.file.read()
        else:
            content = await request.read()
        chaotic = await self._chaos_fault(UPLOAD_TARGET)
        if chaotic is not None:  # before any effect; slack_sdk retries 429 and 500 here too
            text = "ratelimited" if chaotic.status == 429 else str(chaotic.body)
            return web.Response(status=chaotic.status, text=text, headers=dict(chaotic.headers))
        file.content = content
        logger.debug("upload %s: %d bytes", file.id, len(file.content))
        return web.Response(text=f"OK - {len(file.content)}")

    async def _handle_download(self, request: web.Request) -> web.Response:
        file = self._files.get(request.match_info["file_id"])
        if file is None or file.content is None:
            return web.Response(status=404, text="file_not_found")
        mimetype = mimetypes.guess_type(file.filename)[0] or "application/octet-stream"
        return web.Response(body=file.content, content_type=mimetype)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        """The Socket Mode websocket: ``hello`` first, then envelopes out and acks in.

        Pings are answered by aiohttp (slack_sdk pings every few seconds and reconnects
        when pongs stop).  A URL whose ticket is unknown or already used is refused.
        """
        ticket = request.query.get("ticket", "")
        if ticket not in self._socket_tickets:
            return web.Response(status=401, text="invalid_ticket")
        if self._stopping.is_set():
            return web.Response(status=503, text="server_stopping")
        ws = web.WebSocketResponse(timeout=SOCKET_CLOSE_TIMEOUT)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="websocket upgrade expected")
        self._socket_tickets.discard(ticket)
        await ws.prepare(request)
        conn = _SocketConnection(f"socket-{next(self._ids)}", ws)
        self._sockets.append(conn)
        try:
            await ws.send_json({
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": f"emulator-{self._port}", "build_number": 1,
                               "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            })
            self._socket_connected.set()
            logger.debug("socket %s connected (%d open)", conn.id, len(self._sockets))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._receive_ack(conn, msg.data)
                else:
                    logger.warning("socket %s: ignored a %s frame", conn.id, msg.type.name)
        finally:
            self._sockets.remove(conn)
            if not self._sockets:
                self._socket_connected.clear()
            for envelope_id, ack in conn.pending.items():
                if not ack.done():
                    ack.set_exception(ConnectionError(
                        f"Socket Mode connection closed before envelope {envelope_id} was acked"))
            logger.debug("socket %s closed (%d open)", conn.id, len(self._sockets))
        return ws

    def _receive_ack(self, conn: _SocketConnection, data: str) -> None:
        """An ack is ``{"envelope_id": ..., "payload": {...}}`` (payload optional)."""
        try:
            ack = json.loads(data)
        except json.JSONDecodeError:
            logger.warning("socket %s: ignored a message that is not JSON: %r", conn.id, data)
            return
        if not isinstance(ack, dict) or not isinstance(ack.get("envelope_id"), str):
            logger.warning("socket %s: ignored a message without envelope_id: %r", conn.id, ack)
            return
        self.socket_acks.append(ack)
        # Usually on the connection the envelope went out on; a client that reconnected
        # in between acks on its new one, which Slack accepts too.
        waiter = next((c.pending[ack["envelope_id"]] for c in self._sockets
                       if ack["envelope_id"] in c.pending), None)
        if waiter is None or waiter.done():
            logger.warning("socket %s: ack for unknown or settled envelope %s",
                           conn.id, ack["envelope_id"])
            return
        waiter.set_result(copy.deepcopy(ack))

    async def _close_sockets(self) -> None:
        """Close every Socket Mode websocket as a server going away does."""
        await asyncio.gather(
            *(conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopping")
              for conn in list(self._sockets)),
            return_exceptions=True,
        )

    # ----------------------------------------------------------------- internal helpers

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}EMU{next(self._ids):06d}"

    @staticmethod
    def _sorted(messages: Iterable[JSON], *, newest_first: bool = False) -> list[JSON]:
        return sorted(messages, key=lambda m: _ts_key(m["ts"]), reverse=newest_first)

    def _require_user(self, user: str) -> _User:
        if user not in self._users:
            raise ValueError(f"unknown user {user}; call add_user first")
        return self._users[user]

    def _require_channel(self, channel: str) -> _Channel:
        if channel not in self._channels:
            raise ValueError(f"unknown channel {channel}; call add_channel first")
        return self._channels[channel]

    def _require_message(self, channel: str, ts: str) -> JSON:
        message = self._require_channel(channel).messages.get(ts)
        if message is None:
            raise ValueError(f"no message {ts} in {channel}")
        return message

    def _existing_dm(self, user: str) -> _Channel | None:
        """The bot's DM with ``user`` if it was ever opened."""
        return next((c for c in self._channels.values() if c.is_im and c.im_user == user),
                    None)

    def _visible_channel(self, channel_id: str) -> _Channel:
        """The channel as the bot sees it: private conversations it is not in do not
        exist for it (``channel_not_found``), as with Slack."""
        channel = self._channels.get(channel_id)
        if channel is None or (not channel.is_public and self.bot_user_id not in channel.members):
            raise SlackError("channel_not_found")
        return channel

    def _member_channel(self, channel_id: str) -> _Channel:
        """A channel the bot must be in: ``not_in_channel`` for a public one it is not."""
        channel = self._visible_channel(channel_id)
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def _visible_message(self, channel: _Channel, ts: str | None, error: str) -> JSON:
        message = channel.messages.get(ts or "")
        if message is None:
            raise SlackError(error)
        return message

    def _attach_to_thread(self, channel: _Channel, message: JSON, thread_ts: str) -> None:
        parent = channel.messages.get(thread_ts)
        message["thread_ts"] = thread_ts
        if parent is not None:
            message["parent_user_id"] = parent.get("user")
        channel.messages[message["ts"]] = message
        self._refresh_thread(channel, thread_ts)

    def _refresh_thread(self, channel: _Channel, thread_ts: str) -> None:
        """Recompute a thread parent's reply_count, reply_users and latest_reply."""
        parent = channel.messages.get(thread_ts)
        if parent is None:
            return
        replies = self._sorted(
            m for m in channel.messages.values() if _is_reply(m) and m["thread_ts"] == thread_ts
        )
        if not replies:
            for key in ("thread_ts", "reply_count", "reply_users", "reply_users_count",
                        "latest_reply"):
                parent.pop(key, None)
            if parent.get("subtype") == "tombstone":
                del channel.messages[thread_ts]
            return
        users = list(dict.fromkeys(r.get("user") for r in replies if r.get("user")))
        parent.update(thread_ts=thread_ts, reply_count=len(replies), reply_users=users,
                      reply_users_count=len(users), latest_reply=replies[-1]["ts"])

    def _remove_message(self, channel: _Channel, message: JSON) -> None:
        """Delete a message; a thread parent with replies leaves a tombstone, as in Slack."""
        ts = message["ts"]
        channel.pins.pop(ts, None)
        if _is_reply(message):
            del channel.messages[ts]
            self._refresh_thread(channel, message["thread_ts"])
        elif message.get("reply_count"):
            channel.messages[ts] = {
                "type": "message", "subtype": "tombstone", "text": "This message was deleted.",
                "user": "USLACKBOT", "hidden": True, "ts": ts,
                **{k: message[k] for k in ("thread_ts", "reply_count", "reply_users",
                                           "reply_users_count", "latest_reply")},
            }
        else:
            del channel.messages[ts]

    def _bot_message(self, text: str) -> JSON:
        return {
            "type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
            "app_id": self.app_id, "text": text[:MAX_TEXT_CHARS], "ts": self.new_ts(),
            "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": "emulated-bot",
                            "team_id": self.team_id, "deleted": False, "icons": {}},
        }

    def _message_content(self, args: _Args) -> tuple[str | None, list[JSON] | None, Any]:
        """(text, blocks, attachments) of chat.* arguments; blocks validated."""
        text = args.text("text") or args.text("markdown_text")
        blocks = args.json_value("blocks", error="invalid_blocks")
        if blocks is not None:
            problems = _message_block_problems(blocks)
            if problems:
                raise _invalid("invalid_blocks", problems)
        attachments = args.json_value("attachments")
        return text, blocks, attachments

    def _permalink(self, channel: _Channel, message: JSON) -> str:
        link = (f"https://{self.team_domain}.slack.com/archives/{channel.id}"
                f"/p{message['ts'].replace('.', '')}")
        if _is_reply(message):
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return link

    def _conversation_json(self, channel: _Channel) -> JSON:
        if channel.is_im:
            user = self._users[channel.im_user or ""]
            return {"id": channel.id, "created": channel.created, "is_im": True,
                    "is_org_shared": False, "user": user.id, "is_user_deleted": user.deleted,
                    "priority": 0, "is_open": True}
        empty_text = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": channel.id, "name": channel.name, "name_normalized": channel.name,
            "is_channel": channel.id.startswith("C"),
            "is_group": channel.id.startswith("G") and not channel.is_mpim,
            "is_im": False, "is_mpim": channel.is_mpim, "is_private": channel.is_private,
            "is_archived": channel.is_archived, "is_general": False, "is_shared": False,
            "is_ext_shared": False, "is_org_shared": False, "is_pending_ext_shared": False,
            "is_member": self.bot_user_id in channel.members, "created": channel.created,
            "creator": channel.members[0] if channel.members else "", "unlinked": 0,
            "context_team_id": self.team_id, "topic": dict(empty_text),
            "purpose": dict(empty_text), "previous_names": [],
        }

    def _user_json(self, user: _User) -> JSON:
        now = self.clock.now().astimezone(ZoneInfo(user.tz))
        offset = now.utcoffset()
        profile: JSON = {"real_name": user.real_name, "real_name_normalized": user.real_name,
                         "display_name": user.name, "display_name_normalized": user.name,
                         "status_text": "", "status_emoji": "", "team": self.team_id}
        if user.bot_id:
            profile["bot_id"] = user.bot_id
        if user.email is not None and "users:read.email" in self.scopes:
            profile["email"] = user.email
        return {
            "id": user.id, "team_id": self.team_id, "name": user.name, "deleted": user.deleted,
            "real_name": user.real_name, "tz": user.tz, "tz_label": now.tzname(),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile, "is_admin": False, "is_owner": False,
            "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
            "is_bot": user.is_bot, "is_app_user": False, "updated": user.updated,
        }

    def _view_json(self, view: _View) -> JSON:
        payload = view.payload
        return {
            "id": view.id, "team_id": self.team_id, "type": payload.get("type"),
            "title": payload.get("title"), "submit": payload.get("submit"),
            "close": payload.get("close"), "blocks": copy.deepcopy(payload.get("blocks", [])),
            "private_metadata": payload.get("private_metadata", ""),
            "callback_id": payload.get("callback_id", ""),
            "external_id": payload.get("external_id", ""),
            "state": {"values": {}}, "hash": view.hash,
            "clear_on_close": bool(payload.get("clear_on_close", False)),
            "notify_on_close": bool(payload.get("notify_on_close", False)),
            "root_view_id": view.root_view_id, "previous_view_id": view.previous_view_id,
            "app_id": self.app_id, "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    @staticmethod
    def _new_view_hash() -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _consume_trigger(self, args: _Args) -> _Trigger:
        """A trigger id is good once, for :attr:`trigger_lifetime` seconds."""
        trigger = self._triggers.get(args.required("trigger_id"))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("trigger_exchanged")
        if time.monotonic() - trigger.issued_at > self.trigger_lifetime:
            raise SlackError("trigger_expired")
        trigger.used = True
        return trigger

    def _view_arg(self, args: _Args, allowed_types: Iterable[str]) -> JSON:
        view = args.json_value("view")
        if view is None:
            raise SlackError("invalid_arguments")
        problems = _view_problems(view, allowed_types)
        if problems:
            raise _invalid("invalid_arguments", problems)
        assert isinstance(view, dict)  # _view_problems rejects anything else
        return view

    def _store_view(self, payload: JSON, user: str | None) -> _View:
        view_id = self._new_id("V")
        view = _View(view_id, payload, user, self._new_view_hash(), root_view_id=view_id)
        self._views[view_id] = view
        return view

    # ================================================================= Web API methods
    # One handler per method.  Each returns the body of the ok answer without "ok", and
    # raises SlackError only with names listed in its @api_method(errors=...).

    @api_method("auth.test", scope=None)
    def _auth_test(self, args: _Args) -> JSON:
        bot = self._users[self.bot_user_id]
        return {"url": f"https://{self.team_domain}.slack.com/", "team": self.team_domain,
                "user": bot.name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    @api_method("apps.connections.open", scope="connections:write", token_type="app")
    def _apps_connections_open(self, args: _Args) -> JSON:
        # Slack: {"url": "wss://wss-primary.slack.com/link/?ticket=...&app_id=..."}.  The
        # ticket is good for one connection; a client reconnecting asks for a new URL.
        ticket = secrets.token_hex(16)
        self._socket_tickets.add(ticket)
        return {"url": f"ws://{self._host}:{self._port}{SOCKET_PATH}"
                       f"?ticket={ticket}&app_id={self.app_id}"}

    # ----------------------------------------------------------------- chat.*

    @api_method("chat.postMessage", scope="chat:write",
                errors=("channel_not_found", "not_in_channel", "is_archived", "no_text",
                        "invalid_blocks", "invalid_metadata_format", "cannot_dm_bot"))
    def _chat_post_message(self, args: _Args) -> JSON:
        channel_id = args.required("channel")
        if channel_id.startswith(("U", "W")):  # posting to a user id goes to their DM
            channel_id = self._dm_to_post_in(channel_id)
        channel = self._visible_channel(channel_id)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        text, blocks, attachments = self._message_content(args)
        if text is None and not blocks and not attachments:
            raise SlackError("no_text")
        metadata = _message_metadata(args)
        message = self._bot_message(text or "")
        if blocks:
            message["blocks"] = blocks
        if attachments:
            message["attachments"] = attachments
        if metadata is not None:
            message["metadata"] = metadata
        thread_ts = args.text("thread_ts")
        if thread_ts is None:
            channel.messages[message["ts"]] = message
        else:
            parent = channel.messages.get(thread_ts)
            if parent is not None and _is_reply(parent):
                thread_ts = parent["thread_ts"]  # replying to a reply: same thread
            if args.flag("reply_broadcast"):
                message["subtype"] = "thread_broadcast"
            # Slack accepts an unknown thread_ts; the reply then belongs to no visible thread.
            self._attach_to_thread(channel, message, thread_ts)
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _dm_to_post_in(self, user_id: str) -> str:
        """The DM chat.postMessage uses when its ``channel`` is a user id.

        * an unknown user: ``channel_not_found``, as for any channel Slack cannot resolve;
        * a bot (another app's bot user, or this bot itself): ``cannot_dm_bot`` -- not in
          chat.postMessage's documented errors, but what Slack answers when a bot token
          tries to open a DM with a bot user (im.open / conversations.open);
        * a deactivated user: their DM stays, and Slack still posts into it (asked about
          "chat_postMessage succeeds to deleted user", slackapi/python-slack-sdk#1156, a
          Slack engineer answered that deactivated users' conversations still exist).  With
          no DM yet it cannot be opened (conversations.open answers ``user_disabled``);
          chat.postMessage documents nothing closer than ``channel_not_found`` ("value
          passed for channel was invalid") for that, so that is the answer here.
        """
        user = self._users.get(user_id)
        if user is None:
            raise SlackError("channel_not_found")
        if user.is_bot:
            raise SlackError("cannot_dm_bot")
        existing = self._existing_dm(user_id)
        if existing is not None:
            return existing.id
        if user.deleted:
            raise SlackError("channel_not_found")
        return self.open_dm(user_id)

    @api_method("chat.postEphemeral", scope="chat:write",
                errors=("channel_not_found", "not_in_channel", "is_archived",
                        "user_not_in_channel", "no_text", "invalid_blocks"))
    def _chat_post_ephemeral(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        user = args.required("user")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks, attachments = self._message_content(args)
        if text is None and not blocks and not attachments:
            raise SlackError("no_text")
        self._ephemerals.append({"channel": channel.id, "user": user, "text": text or "",
                                 "blocks": blocks, "thread_ts": args.text("thread_ts")})
        return {"message_ts": self.new_ts()}

    @api_method("chat.update", scope="chat:write",
                errors=("channel_not_found", "message_not_found", "cant_update_message",
                        "no_text", "invalid_blocks", "invalid_metadata_format"))
    def _chat_update(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        message = self._visible_message(channel, args.required("ts"), "message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        text, blocks, attachments = self._message_content(args)
        if text is None and blocks is None and attachments is None:
            raise SlackError("no_text")
        metadata = _message_metadata(args)
        if text is not None:
            message["text"] = text[:MAX_TEXT_CHARS]
        if metadata is not None:  # omitted metadata is kept, as Slack does
            message["metadata"] = metadata
        # Omitted blocks/attachments are kept; an empty list removes them (Slack's rule).
        for key, value in (("blocks", blocks), ("attachments", attachments)):
            if value:
                message[key] = value
            elif value is not None:
                message.pop(key, None)
        message["edited"] = {"user": self.bot_user_id, "ts": self.new_ts()}
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"],
                "message": copy.deepcopy(message)}

    @api_method("chat.delete", scope="chat:write",
                errors=("channel_not_found", "message_not_found", "cant_delete_message"))
    def _chat_delete(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        message = self._visible_message(channel, args.required("ts"), "message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        self._remove_message(channel, message)
        return {"channel": channel.id, "ts": message["ts"]}

    @api_method("chat.getPermalink", scope=None,
                errors=("channel_not_found", "message_not_found"))
    def _chat_get_permalink(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        message = self._visible_message(channel, args.required("message_ts"),
                                        "message_not_found")
        return {"channel": channel.id, "permalink": self._permalink(channel, message)}

    # ----------------------------------------------------------------- conversations.*

    @api_method("conversations.join", scope="channels:join",
                errors=("channel_not_found", "is_archived",
                        "method_not_supported_for_channel_type"))
    def _conversations_join(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        if not channel.is_public:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.bot_user_id in channel.members:
            return {"channel": self._conversation_json(channel), "warning": "already_in_channel",
                    "response_metadata": {"warnings": ["already_in_channel"]}}
        channel.members.append(self.bot_user_id)
        if self.announce_joins:
            join = {"type": "message", "subtype": "channel_join", "user": self.bot_user_id,
                    "text": f"<@{self.bot_user_id}> has joined the channel",
                    "ts": self.new_ts(), "team": self.team_id}
            channel.messages[join["ts"]] = join
        return {"channel": self._conversation_json(channel)}

    @api_method("conversations.info", scope=per_conversation("read"),
                errors=("channel_not_found",))
    def _conversations_info(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        info = self._conversation_json(channel)
        if args.flag("include_num_members") and not channel.is_im:
            info["num_members"] = len(channel.members)
        return {"channel": info}

    @api_method("conversations.history", scope=per_conversation("history"),
                errors=("channel_not_found", "not_in_channel", "invalid_ts_latest",
                        "invalid_ts_oldest", "invalid_cursor"))
    def _conversations_history(self, args: _Args) -> JSON:
        channel = self._member_channel(args.required("channel"))
        latest = args.timestamp("latest", "invalid_ts_latest")
        oldest = args.timestamp("oldest", "invalid_ts_oldest")
        inclusive = args.flag("inclusive")
        limit = args.limit(default=100, maximum=1000)
        found = [m for m in self._sorted(channel.messages.values(), newest_first=True)
                 if _shows_in_history(m) and _within(m["ts"], oldest, latest, inclusive)]
        cursor = args.text("cursor")
        if cursor is not None:
            start = _ts_key(_decode_cursor(cursor, "next_ts"))
            found = [m for m in found if _ts_key(m["ts"]) <= start]
        page, rest = found[:limit], found[limit:]
        body: JSON = {"messages": _listed(page, args.flag("include_all_metadata")),
                      "has_more": bool(rest),
                      "pin_count": len(channel.pins), "channel_actions_ts": None,
                      "channel_actions_count": 0}
        if rest:
            body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
        return body

    @api_method("conversations.replies", scope=per_conversation("history"),
                errors=("channel_not_found", "not_in_channel", "thread_not_found",
                        "invalid_cursor"))
    def _conversations_replies(self, args: _Args) -> JSON:
        channel = self._member_channel(args.required("channel"))
        message = self._visible_message(channel, args.required("ts"), "thread_not_found")
        latest = args.timestamp("latest", "invalid_arguments")
        oldest = args.timestamp("oldest", "invalid_arguments")
        inclusive = args.flag("inclusive")
        limit = args.limit(default=1000, maximum=1000)
        # Asked with the ts of a reply, Slack answers the whole thread, parent first.
        parent_ts = message["thread_ts"] if _is_reply(message) else message["ts"]
        parent = channel.messages.get(parent_ts)
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in self._sorted(channel.messages.values())
                   if _is_reply(m) and m["thread_ts"] == parent_ts
                   and _within(m["ts"], oldest, latest, inclusive)]
        cursor = args.text("cursor")
        if cursor is not None:
            start = _ts_key(_decode_cursor(cursor, "next_ts"))
            replies = [m for m in replies if _ts_key(m["ts"]) >= start]
        page, rest = replies[:limit], replies[limit:]
        body: JSON = {"messages": _listed([parent, *page], args.flag("include_all_metadata")),
                      "has_more": bool(rest)}
        if rest:
            body["response_metadata"] = {"next_cursor": _encode_cursor("next_ts", rest[0]["ts"])}
        return body

    @api_method("conversations.open", scope=OPEN_SCOPES,
                errors=("channel_not_found", "user_not_found", "user_disabled",
                        "users_list_not_supplied", "too_many_users", "cannot_dm_bot"))
    def _conversations_open(self, args: _Args) -> JSON:
        channel_id = args.text("channel")
        if channel_id is not None:  # re-open an existing DM / group DM
            channel = self._visible_channel(channel_id)
            if channel.is_public:
                raise SlackError("channel_not_found")
            return {"channel": {"id": channel.id}, "no_op": True, "already_open": True}
        raw_users = args.text("users")
        users = [u.strip() for u in (raw_users or "").split(",") if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > MAX_CONVERSATION_USERS:
            raise SlackError("too_many_users")
        for user in users:
            if user not in self._users:
                raise SlackError("user_not_found")
            if self._users[user].deleted:
                raise SlackError("user_disabled")
        humans = [u for u in dict.fromkeys(users) if u != self.bot_user_id]
        # A bot token cannot open a 1:1 DM with a bot user, itself included: Slack answers
        # cannot_dm_bot (undocumented in the spec; seen from im.open and conversations.open).
        if not humans or (len(humans) == 1 and self._users[humans[0]].is_bot):
            raise SlackError("cannot_dm_bot")
        if len(humans) == 1:
            existed = any(c.is_im and c.im_user == humans[0] for c in self._channels.values())
            channel = self._channels[self.open_dm(humans[0])]
        else:
            channel, existed = self._open_group_dm(humans)
        result: JSON = {"channel": {"id": channel.id}}
        if args.flag("return_im"):
            result["channel"] = self._conversation_json(channel)
        if existed:
            result.update(no_op=True, already_open=True)
        return result

    def _open_group_dm(self, humans: list[str]) -> tuple[_Channel, bool]:
        members = {self.bot_user_id, *humans}
        for channel in self._channels.values():
            if channel.is_mpim and set(channel.members) == members:
                return channel, True
        names = "--".join(sorted(self._users[u].name for u in members))
        channel_id = self._new_id("G")
        channel = _Channel(channel_id, f"mpdm-{names}-1", is_private=True, is_mpim=True,
                           members=[self.bot_user_id, *humans], created=self.unix_now())
        self._channels[channel_id] = channel
        return channel, False

    @api_method("conversations.members", scope=per_conversation("read"),
                errors=("channel_not_found", "invalid_limit", "invalid_cursor"))
    def _conversations_members(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        limit = args.integer("limit", 100)
        if limit < 0 or limit > 1000:
            raise SlackError("invalid_limit")
        limit = limit or 100
        members = channel.members
        start = 0
        cursor = args.text("cursor")
        if cursor is not None:
            user = _decode_cursor(cursor, "user")
            if user not in members:
                raise SlackError("invalid_cursor")
            start = members.index(user)
        page = members[start:start + limit]
        rest = members[start + limit:]
        return {"members": list(page),
                "response_metadata": {"next_cursor": _encode_cursor("user", rest[0]) if rest
                                      else ""}}

    # ----------------------------------------------------------------- pins.*, reactions.*

    @api_method("pins.add", scope="pins:write",
                errors=("channel_not_found", "not_in_channel", "no_item_specified",
                        "bad_timestamp", "message_not_found", "already_pinned"))
    def _pins_add(self, args: _Args) -> JSON:
        channel = self._member_channel(args.required("channel"))
        ts = args.timestamp("timestamp", "bad_timestamp")
        if ts is None:
            raise SlackError("no_item_specified")
        message = self._visible_message(channel, ts, "message_not_found")
        if ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins[ts] = _Pin(self.unix_now(), self.bot_user_id)
        message["pinned_to"] = [channel.id]
        return {}

    @api_method("pins.remove", scope="pins:write",
                errors=("channel_not_found", "not_in_channel", "no_item_specified",
                        "bad_timestamp", "message_not_found", "no_pin"))
    def _pins_remove(self, args: _Args) -> JSON:
        channel = self._member_channel(args.required("channel"))
        ts = args.timestamp("timestamp", "bad_timestamp")
        if ts is None:
            raise SlackError("no_item_specified")
        message = self._visible_message(channel, ts, "message_not_found")
        if ts not in channel.pins:
            raise SlackError("no_pin")
        del channel.pins[ts]
        message.pop("pinned_to", None)
        return {}

    @api_method("pins.list", scope="pins:read", errors=("channel_not_found",))
    def _pins_list(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        items = [
            {"type": "message", "created": pin.created, "created_by": pin.created_by,
             "channel": channel.id, "message": copy.deepcopy(channel.messages[ts])}
            for ts, pin in reversed(channel.pins.items())  # newest pin first, as Slack
        ]
        return {"items": items}

    @api_method("reactions.get", scope="reactions:read",
                errors=("channel_not_found", "no_item_specified", "bad_timestamp",
                        "message_not_found"))
    def _reactions_get(self, args: _Args) -> JSON:
        channel = self._visible_channel(args.required("channel"))
        ts = args.timestamp("timestamp", "bad_timestamp")
        if ts is None:
            raise SlackError("no_item_specified")
        message = copy.deepcopy(self._visible_message(channel, ts, "message_not_found"))
        message["permalink"] = self._permalink(channel, message)
        return {"type": "message", "channel": channel.id, "message": message}

    # ----------------------------------------------------------------- users.*

    @api_method("users.info", scope="users:read", errors=("user_not_found",))
    def _users_info(self, args: _Args) -> JSON:
        user = self._users.get(args.required("user"))
        if user is None or user.erased:
            raise SlackError("user_not_found")
        return {"user": self._user_json(user)}

    # ----------------------------------------------------------------- views.*

    @api_method("views.open", scope=None,
                errors=("invalid_trigger_id", "trigger_exchanged", "trigger_expired"))
    def _views_open(self, args: _Args) -> JSON:
        payload = self._view_arg(args, ["modal"])
        trigger = self._consume_trigger(args)
        view = self._store_view(payload, trigger.user)
        return {"view": self._view_json(view)}

    @api_method("views.push", scope=None,
                errors=("invalid_trigger_id", "trigger_exchanged", "trigger_expired"))
    def _views_push(self, args: _Args) -> JSON:
        payload = self._view_arg(args, ["modal"])
        trigger = self._consume_trigger(args)
        view = self._store_view(payload, trigger.user)
        return {"view": self._view_json(view)}

    @api_method("views.update", scope=None, errors=("view_not_found", "hash_conflict"))
    def _views_update(self, args: _Args) -> JSON:
        view_id, external_id = args.text("view_id"), args.text("external_id")
        if view_id is None and external_id is None:
            raise SlackError("invalid_arguments")
        payload = self._view_arg(args, ["modal", "home"])
        if view_id is not None:
            view = self._views.get(view_id)
        else:
            view = next((v for v in self._views.values()
                         if v.payload.get("external_id") == external_id), None)
        if view is None:
            raise SlackError("view_not_found")
        expected_hash = args.text("hash")
        if expected_hash is not None and expected_hash != view.hash:
            raise SlackError("hash_conflict")
        view.payload = payload
        view.hash = self._new_view_hash()
        return {"view": self._view_json(view)}

    @api_method("views.publish", scope=None, errors=("user_not_found", "hash_conflict"))
    def _views_publish(self, args: _Args) -> JSON:
        user_id = args.required("user_id")
        payload = self._view_arg(args, ["home"])
        if user_id not in self._users:
            raise SlackError("user_not_found")
        view = self._views.get(self._home_views.get(user_id, ""))
        if view is None:
            view = self._store_view(payload, user_id)
            self._home_views[user_id] = view.id
            return {"view": self._view_json(view)}
        expected_hash = args.text("hash")
        if expected_hash is not None and expected_hash != view.hash:
            raise SlackError("hash_conflict")
        view.payload = payload
        view.hash = self._new_view_hash()
        return {"view": self._view_json(view)}

    # ----------------------------------------------------------------- files.*

    @api_method("files.getUploadURLExternal", scope="files:write")
    def _files_get_upload_url_external(self, args: _Args) -> JSON:
        filename = args.required("filename")
        length = args.integer("length", -1)
        if length < 0:
            raise SlackError("invalid_arguments")
        file = _File(self._new_id("F"), filename, length, self.unix_now())
        self._files[file.id] = file
        return {"upload_url": f"{self.base_url}/_upload/{file.id}", "file_id": file.id}

    @api_method("files.completeUploadExternal", scope="files:write",
                errors=("file_not_found", "channel_not_found", "not_in_channel", "is_archived"))
    def _files_complete_upload_external(self, args: _Args) -> JSON:
        entries = args.json_value("files")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments")
        files: list[_File] = []
        for entry in entries:
            if not isinstance(entry, dict) or not entry.get("id"):
                raise SlackError("invalid_arguments")
            file = self._files.get(entry["id"])
            if file is None or file.content is None:
                raise SlackError("file_not_found")
            file.title = entry.get("title") or file.filename
            files.append(file)
        channel_ids = [c for c in (args.text("channels") or "").split(",") if c]
        if args.text("channel_id"):
            channel_ids.insert(0, args.required("channel_id"))
        channels = [self._member_channel(c) for c in dict.fromkeys(channel_ids)]
        for channel in channels:
            if channel.is_archived:
                raise SlackError("is_archived")
        thread_ts = args.text("thread_ts")
        for channel in channels:
            for file in files:
                file.channels.append(channel.id)
            message = self._bot_message(args.text("initial_comment") or "")
            message.update(files=[self._file_json(f) for f in files], upload=True,
                           display_as_bot=False)
            if thread_ts is None:
                channel.messages[message["ts"]] = message
            else:
                self._attach_to_thread(channel, message, thread_ts)
        return {"files": [self._file_json(f) for f in files]}

    def _file_json(self, file: _File) -> JSON:
        mimetype = mimetypes.guess_type(file.filename)[0] or "text/plain"
        url = f"{self.base_url}/_files/{file.id}/{file.filename}"
        return {
            "id": file.id, "created": file.created, "timestamp": file.created,
            "name": file.filename, "title": file.title or file.filename,
            "mimetype": mimetype, "filetype": file.filename.rpartition(".")[2] or "text",
            "size": len(file.content or b""), "user": self.bot_user_id,
            "url_private": url, "url_private_download": url,
            "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{file.id}",
            "channels": list(file.channels),
        }
