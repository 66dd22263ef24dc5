"""A local, in-memory emulator of the Slack Web API: the HTTP server that glues its parts.

Why this exists: the bot's end-to-end tests and the ``postmortem-bot demo`` command need a
Slack that behaves like the real one -- same argument names, same response shapes, same
error names, same awkward rules (``conversations.history`` hides thread replies and treats
``latest`` as exclusive, a trigger id works once and only for 3 s, a bot must be a member
of a channel to post in it...) -- without a network, a workspace or credentials.  Mocks of
``AsyncWebClient`` would only check that we call what we *think* Slack wants; this server
is spoken to by the real ``slack_sdk`` client over real HTTP, so serialisation, retries and
error handling are exercised exactly as in production.

Shape of the package:

* :mod:`slack_emulator.workspace` (and :mod:`~slack_emulator.records`) -- the state: users,
  channels and their messages, pins, views, trigger ids, uploaded files; the helpers tests
  use to set it up, act as people and inspect it.
* :mod:`slack_emulator.api` -- :class:`SlackError`, the method registry
  (``@api_method``), a call's arguments; :mod:`slack_emulator.methods` -- one handler per
  Web API method, one module per family; :mod:`slack_emulator.limits` -- Slack's block and
  view limits.  The bot token holds manifest.yml's bot scopes (see
  :mod:`slack_emulator.scopes`), so a method the manifest does not cover answers
  ``missing_scope`` here as in a real workspace.
* :mod:`slack_emulator.rate_limits` -- Slack's rate limits (method tiers, chat.postMessage
  per channel), answered 429 with ``Retry-After`` as Slack does.
* :mod:`slack_emulator.faults` -- scripted faults (rate limits, 5xx, error answers, delays
  for one method) and a seeded random chaos mode for soak tests.
* :mod:`slack_emulator.socket_mode` -- Socket Mode, over a websocket on this server.
* :mod:`slack_emulator.driver` -- Slack's side of event delivery: signed events, slash
  commands and interactivity POSTed to the bot.
* this module -- :class:`SlackEmulator`: the routes, authentication and scope checks, the
  log of every call, response_url hooks and the upload URL.

Everything lives in memory and runs on the caller's asyncio event loop; nothing is global
except the method registry, which is filled once at import time and never changes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import mimetypes
import secrets
from collections.abc import Iterable

from aiohttp import web

import slack_emulator.methods  # noqa: F401  (registers every Web API handler)
from bot.clock import Clock
from slack_emulator.api import (
    JSON,
    METHODS,
    ApiMethod,
    Args,
    Reply,
    SlackError,
    TokenType,
    possible_errors,
)
from slack_emulator.faults import UPLOAD_TARGET, FaultInjection
from slack_emulator.rate_limits import RateLimits
from slack_emulator.scopes import APP_TOKEN_SCOPES, ConversationKind
from slack_emulator.socket_mode import SOCKET_PATH, SocketMode
from slack_emulator.workspace import Workspace

__all__ = ["SlackEmulator"]

logger = logging.getLogger("postmortem_bot.emulator")


class SlackEmulator(Workspace, FaultInjection, SocketMode):
    """A Slack workspace plus a Web API server on ``127.0.0.1``.

    Point ``AsyncWebClient(token=emulator.bot_token, base_url=emulator.api_url)`` at it.
    Tests set state up with :meth:`add_user` / :meth:`add_channel`, act as humans with
    :meth:`post_user_message` and friends, and inspect what the bot did with
    :meth:`messages`, :meth:`messages_in_dm`, :meth:`views`, :attr:`calls`...

    The bot token holds exactly the bot scopes of manifest.yml unless ``scopes`` says
    otherwise; a method whose scope is not held answers ``missing_scope`` as Slack does.
    Faults are injected with :meth:`fail`, :meth:`delay` and :meth:`chaos`
    (:class:`~slack_emulator.faults.FaultInjection`); Socket Mode envelopes are sent with
    :meth:`send_socket_envelope` (:class:`~slack_emulator.socket_mode.SocketMode`).
    """

    app_scopes: tuple[str, ...]
    """The app-level token's scopes (default: ``connections:write``)."""

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
        rate_limits: bool = True,
    ) -> None:
        Workspace.__init__(
            self,
            team_id=team_id,
            team_domain=team_domain,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            scopes=scopes,
            clock=clock,
        )
        FaultInjection.__init__(self)
        SocketMode.__init__(self)
        self.rate_limits = RateLimits(enabled=rate_limits)
        """Slack's per-method tiers and chat.postMessage's per-channel limit (429 past them)."""
        self.app_scopes = tuple(app_scopes)
        self.bot_token = bot_token
        self.app_token = app_token

        self.calls: list[JSON] = []
        """Every Web API call: method, args (token removed), status, ok, error."""

        self.in_flight: dict[str, int] = {}
        """Web API calls received and not answered yet, by method (a call sleeping in an
        injected delay is in flight).  A client killed meanwhile does not stop the call:
        Slack acts on a request it has received, as here."""

        self._responses: list[JSON] = []
        self._hooks: set[str] = set()

        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0
        self._stopping = asyncio.Event()

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

    # ----------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[JSON]:
        """The entries of :attr:`calls` for one Web API method."""
        return [c for c in self.calls if c["method"] == method]

    def responses(self) -> list[JSON]:
        """JSON bodies POSTed to URLs from :meth:`new_response_url`, in order."""
        return copy.deepcopy(self._responses)

    def new_response_url(self) -> str:
        """A URL on this server that records POSTed JSON like Slack's response_url."""
        hook_id = secrets.token_hex(8)
        self._hooks.add(hook_id)
        return f"{self.base_url}/_hooks/response/{hook_id}"

    # ----------------------------------------------------------------- HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            args, token = await self._read_call(request)
        except SlackError as exc:
            args, token = {}, None
            reply = Reply(200, {"ok": False, "error": exc.error})
        else:
            self.in_flight[method] = self.in_flight.get(method, 0) + 1
            try:
                reply = await self._answer(method, args, token)
            finally:
                self.in_flight[method] -= 1
        self.calls.append(
            {
                "method": method,
                "args": args,
                "status": reply.status,
                "ok": reply.status == 200 and reply.error is None,
                "error": reply.error,
            }
        )
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

    async def _answer(self, method: str, args: JSON, token: str | None) -> Reply:
        """Delay, injected fault, authentication, then the handler."""
        injected = await self._injected_fault(method)
        if injected is not None:
            return injected
        try:
            spec = self._authenticate(method, token)
            self._authorize(spec, args)
            channel = args.get("channel")
            wait = self.rate_limits.retry_after(method, channel if isinstance(channel, str) else None)
            if wait is not None:
                return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
            # A deep copy: what handlers store must not alias what `calls` records.
            body = spec.handler(self, Args(copy.deepcopy(args)))
        except SlackError as exc:
            if method in METHODS and exc.error not in possible_errors(method):
                logger.error("emulator bug: %s raised undeclared error %s", method, exc.error)
                return Reply(500, f"emulator bug: {method} raised undeclared {exc.error}")
            return Reply(200, {"ok": False, "error": exc.error, **exc.extra})
        return Reply(200, {"ok": True, **body})

    def _authenticate(self, method: str, token: str | None) -> ApiMethod:
        if not token:
            raise SlackError("not_authed")
        kinds: dict[str, TokenType] = {self.bot_token: "bot", self.app_token: "app"}
        if token not in kinds:
            raise SlackError("invalid_auth")
        spec = METHODS.get(method)
        if spec is None:
            raise SlackError("unknown_method")
        if kinds[token] != spec.token_type:
            raise SlackError("not_allowed_token_type")
        return spec

    def _authorize(self, spec: ApiMethod, args: JSON) -> None:
        """``missing_scope`` unless the token holds the scope the call needs, answered as
        Slack does: HTTP 200 with ``needed`` (the scope) and ``provided`` (every scope the
        token holds, comma-separated)."""
        needed = self._needed_scope(spec, Args(args))
        granted = self.scopes if spec.token_type == "bot" else self.app_scopes
        if needed is not None and needed not in granted:
            raise SlackError("missing_scope", {"needed": needed, "provided": ",".join(granted)})

    def _needed_scope(self, spec: ApiMethod, args: Args) -> str | None:
        """The scope this call needs; for conversations.*, by the conversation's type.

        A conversation the emulator does not know needs nothing here: the handler answers
        ``channel_not_found`` (or ``users_list_not_supplied``) for it.
        """
        if spec.scope is None or isinstance(spec.scope, str):
            return spec.scope
        kind = self._conversation_kind(args)
        return None if kind is None else spec.scope.get(kind)

    def _conversation_kind(self, args: Args) -> ConversationKind | None:
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
