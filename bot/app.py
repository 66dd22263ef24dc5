"""The app factory: builds the AsyncApp and the HTTP server around it. No module-level app."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltError
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped, warning_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock, SystemClock
from bot.config import ConfigError, Settings
from bot.inbox import EventInbox, InboxRefused, NotForUs
from bot.listeners import register_all
from bot.listeners.context import provide_services
from bot.listeners.running import drain, listener_tasks
from bot.metrics import exposition
from bot.payloads import MalformedPayload
from bot.services import Services
from bot.slack import create_client, error_code
from bot.ui.answers import other_workspace_command, other_workspace_modal, other_workspace_text
from storage.db import create_engine, create_session_factory, migrate, ping

log = logging.getLogger("postmortem_bot.app")


class BotAuthorization:
    """Bolt's `authorize`, answered from one auth.test made at start-up.

    Bolt's default single-workspace authorization calls auth.test on the first request,
    before the listener can ack; a slow or rate-limited Slack would then delay that ack past
    3 s. Asking once at start-up also turns a wrong token into a clear start-up error.
    """

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._result: AuthorizeResult | None = None

    async def warm(self) -> None:
        try:
            response = await self.client.auth_test()
        except SlackApiError as exc:
            code = error_code(exc)
            if code in ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"):
                raise ConfigError(f"SLACK_BOT_TOKEN was refused by Slack ({code}): check the bot token") from exc
            log.warning("auth.test failed at start-up (%s); will ask again on the first request", code)
            return
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Slack unreachable for now: serve anyway (health checks, queued retries) and ask later.
            log.warning("cannot reach Slack at start-up (%s); will ask again on the first request", exc)
            return
        self._result = AuthorizeResult.from_auth_test_response(bot_token=self.client.token, auth_test_response=response)
        log.info("authorized as bot user %s in team %s", response.get("user_id"), response.get("team_id"))

    @property
    def team_id(self) -> str | None:
        """The bot's workspace, once auth.test has answered."""
        return self._result.team_id if self._result is not None else None

    async def result(self) -> AuthorizeResult:
        if self._result is None:
            await self.warm()
        if self._result is None:
            raise BoltError("auth.test is failing; cannot authorize the request")
        return self._result

    def for_bolt(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        # Bolt passes arguments by the parameter names it reads off the function, `self`
        # included, so it gets a plain function rather than a method or callable object.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return await self.result()

        return authorize


class _ExpectedBoltWarnings(logging.Filter):
    """Drops bolt's start-up warnings that the token "will be unused": giving bolt our own
    client and `authorize` is the design here, and a false warning at every start teaches
    operators to ignore warnings."""

    EXPECTED = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.EXPECTED


def build_app(
    settings: Settings, client: AsyncWebClient, services: Services, authorize: BotAuthorization, inbox: EventInbox
) -> AsyncApp:
    bolt_logger = logging.getLogger("postmortem_bot.bolt")
    if not any(isinstance(f, _ExpectedBoltWarnings) for f in bolt_logger.filters):
        bolt_logger.addFilter(_ExpectedBoltWarnings())
    app = AsyncApp(
        client=client,
        authorize=authorize.for_bolt(),
        signing_secret=settings.signing_secret,
        # Acknowledge first, work after: Slack gives 3 s and retries what is slower.
        process_before_response=False,
        logger=bolt_logger,
    )
    app.use(provide_services(services))  # listeners find them in bolt's context
    app.use(store_events_before_ack(inbox))  # Socket Mode's events; HTTP's never reach bolt
    app.use(refuse_other_workspaces)
    register_all(app)

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        # The listener failed after its ack; log enough to find the request, never the tokens.
        kind = body.get("type") or body.get("command") or "request"
        log.error("listener failed on %s: %s", kind, error, exc_info=error)

    return app


def store_events_before_ack(inbox: EventInbox) -> Callable[..., Awaitable[BoltResponse]]:
    """Bolt middleware: an Events API delivery is acknowledged once the inbox has committed
    it (in Socket Mode the ack is sent when dispatch returns), and no listener runs for it."""

    async def store_event(req: AsyncBoltRequest, next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        if not _is_event(req.body):
            return await next()
        # Socket Mode hands bolt a parsed payload: keep it as JSON, as an HTTP body would be.
        return await take_event(inbox, req.raw_body or json.dumps(req.body), req.body)

    return store_event


async def take_event(inbox: EventInbox, raw_body: str, body: dict[str, Any]) -> BoltResponse:
    """Store one Events API delivery and say what to answer Slack."""
    try:
        await inbox.accept(raw_body, body)
    except MalformedPayload as exc:
        # No team or event id: Slack never sends that, and it could not be recorded as handled.
        log.warning("ignored an event without a usable envelope: %s", exc)
    except NotForUs as exc:
        log.warning("ignored an event from workspace %s: this bot serves another", exc)
    except InboxRefused:
        return BoltResponse(status=503, body={"error": "cannot store events right now, retry later"})
    return BoltResponse(status=200, body="")


# Answers through response_url sent after the ack; kept so they are not garbage-collected.
_pending_answers: set[asyncio.Task[None]] = set()


async def refuse_other_workspaces(
    req: AsyncBoltRequest, context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
) -> BoltResponse:
    """Bolt middleware: a request signed correctly but from another workspace changes nothing.

    The bot holds one workspace's token, and the signing secret is the app's, shared by every
    workspace the app is installed in: a request from workspace B would otherwise make the
    bot act in workspace A with A's token (`/postmortem start` posting a card there, a
    button or form naming one of A's incidents by id). It is answered where the person
    will see it (the command's reply, the modal, response_url) and logged; an event is
    acknowledged (Slack retries anything else) and dropped.
    """
    ours = context.authorize_result.team_id if context.authorize_result is not None else None
    theirs = context.team_id
    if ours is None or theirs is None or theirs == ours:
        return await next()
    body = req.body if isinstance(req.body, dict) else {}
    kind = body.get("type") or ("slash_command" if "command" in body else "request")
    log.warning("refused a %s from workspace %s: this bot serves workspace %s", kind, theirs, ours)
    if "command" in body:
        return BoltResponse(status=200, body=other_workspace_command())
    if kind == "view_submission":
        return BoltResponse(status=200, body={"response_action": "update", "view": other_workspace_modal()})
    if context.response_url:
        task = asyncio.create_task(_answer_refusal(context.response_url))
        _pending_answers.add(task)
        task.add_done_callback(_pending_answers.discard)
    return BoltResponse(status=200, body={"ok": False, "error": "request from another workspace: nothing done"})


async def _answer_refusal(response_url: str) -> None:
    from slack_sdk.webhook.async_client import AsyncWebhookClient

    try:
        await AsyncWebhookClient(response_url, timeout=10).send(
            text=other_workspace_text(), response_type="ephemeral", replace_original=False
        )
    except Exception as exc:  # a dead response_url: the refusal is logged already
        log.warning("could not answer a request from another workspace: %s", exc.__class__.__name__)


@dataclass
class Bot:
    """Everything one process runs: database engine, Slack client, services and the bolt app."""

    settings: Settings
    engine: AsyncEngine
    client: AsyncWebClient
    services: Services
    app: AsyncApp
    inbox: EventInbox

    @classmethod
    async def create(cls, settings: Settings, clock: Clock | None = None, run_migrations: bool = True) -> Bot:
        engine = create_engine(settings.database_url)
        if run_migrations:
            await migrate(engine)
        client = create_client(settings)
        authorize = BotAuthorization(client)
        try:
            await authorize.warm()
        except ConfigError:
            await engine.dispose()
            raise
        clock = clock or SystemClock()
        sessions = create_session_factory(engine)
        services = Services.build(settings, client, sessions, clock)
        inbox = EventInbox(engine, sessions, clock, services.intake, own_team=lambda: authorize.team_id)
        app = build_app(settings, client, services, authorize, inbox)
        return cls(settings, engine, client, services, app, inbox)

    def start(self) -> None:
        """Start what runs beside the requests: the inbox's writer and applier."""
        self.inbox.start()

    async def idle(self) -> bool:
        """Whether every acknowledged request has finished its work: listeners (they run
        after the ack), answers sent through response_url, stored events applied."""
        return not listener_tasks() and not _pending_answers and await self.inbox.applied()

    async def close(self) -> None:
        await self.inbox.stop()  # deliveries waiting to be applied stay stored if it cannot finish
        await self.services.trackers.close()  # ticket work in flight, and the trackers' connections
        await self.services.directory.flush()  # names heard from Slack, still being kept
        await self.engine.dispose()

    def web_app(self) -> web.Application:
        """The HTTP surface: POST /slack/events for everything Slack sends, GET /healthz."""
        verifier = SignatureVerifier(self.settings.signing_secret or "")

        async def slack_events(request: web.Request) -> web.Response:
            body = await request.text()
            # Checked before parsing, so a forged request gets 401 whatever its body holds.
            if not verifier.is_valid_request(body, dict(request.headers)):
                log.warning("rejected a request with a bad or stale signature from %s", request.remote)
                return web.json_response({"error": "invalid signature"}, status=401)
            if request.content_type == "application/json":
                # Events API deliveries, nearly all the traffic: stored and answered here,
                # without bolt's request object and dispatch.
                try:
                    payload = json.loads(body)
                except ValueError as exc:
                    log.warning("rejected a malformed signed request: %s", exc)
                    return web.json_response({"error": "malformed request body"}, status=400)
                if _is_event(payload):
                    problem = malformed(payload)
                    if problem:
                        log.warning("rejected a signed request with a malformed payload: %s", problem)
                        return web.json_response({"error": f"malformed payload: {problem}"}, status=400)
                    return await to_aiohttp_response(await take_event(self.inbox, body, payload))
            try:
                bolt_request = await to_bolt_request(request)
            except Exception as exc:  # bolt parses JSON and form bodies eagerly
                log.warning("rejected a malformed signed request: %s", exc)
                return web.json_response({"error": "malformed request body"}, status=400)
            problem = malformed(bolt_request.body)
            if problem:
                log.warning("rejected a signed request with a malformed payload: %s", problem)
                return web.json_response({"error": f"malformed payload: {problem}"}, status=400)
            response = await self.app.async_dispatch(bolt_request)
            return await to_aiohttp_response(response)

        async def healthz(_request: web.Request) -> web.Response:
            try:
                await ping(self.engine)
            except Exception as exc:
                log.error("health check: database unreachable: %s", exc)
                return web.json_response({"ok": False, "database": "unreachable"}, status=503)
            return web.json_response({"ok": True, "database": "ok"})

        async def metrics(_request: web.Request) -> web.Response:
            payload, content_type = exposition()
            return web.Response(body=payload, headers={"Content-Type": content_type})

        async def jira_webhook(request: web.Request) -> web.Response:
            return await self._tracker_webhook("jira", request)

        async def linear_webhook(request: web.Request) -> web.Response:
            return await self._tracker_webhook("linear", request)

        web_app = web.Application()
        web_app.router.add_post("/slack/events", slack_events)
        web_app.router.add_post("/trackers/jira", jira_webhook)
        web_app.router.add_post("/trackers/linear", linear_webhook)
        web_app.router.add_get("/healthz", healthz)
        web_app.router.add_get("/metrics", metrics)
        return web_app

    async def _tracker_webhook(self, name: str, request: web.Request) -> web.Response:
        """POST /trackers/<name>: checked and applied by the tickets' owner (bot/trackers/)."""
        body = await request.read()
        status, reason = await self.services.trackers.webhook(name, body, request.headers)
        if status >= 400:
            log.warning("%s webhook answered %d: %s", name, status, reason)
        return web.json_response({"ok": status < 400, "reason": reason}, status=status)


# Parts of a payload bolt reads as objects before any listener runs; Slack always sends
# them as objects, and bolt answers 500 when a signed request says otherwise.
OBJECT_FIELDS = ("event", "user", "team", "channel", "view", "container", "message", "enterprise", "authorizations")


def malformed(body: Any) -> str | None:
    """Why a signed payload cannot be what Slack sends, or None."""
    if not isinstance(body, dict):
        return "not an object"
    for name in OBJECT_FIELDS:
        value = body.get(name)
        if (
            value is not None
            and not isinstance(value, dict)
            and not (name == "authorizations" and isinstance(value, list))
        ):
            return f"{name} is not an object"
    actions = body.get("actions")
    if actions is not None and not (isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
        return "actions is not a list of objects"
    event = body.get("event")
    if isinstance(event, dict) and not isinstance(event.get("type"), str):
        return "event.type is not a string"  # bolt matches listeners on it
    for name in ("type", "callback_id", "command"):
        if name in body and not isinstance(body[name], str):
            return f"{name} is not a string"
    view = body.get("view")
    if "view" in body and not isinstance(view, dict):
        return "view is not an object"  # bolt reads it whenever the key is there
    if isinstance(view, dict):
        if not isinstance(view.get("type"), str):
            return "view.type is not a string"  # bolt reads it unguarded
        if "state" in view and not isinstance(view["state"], dict):
            return "view.state is not an object"
        for name in ("callback_id", "id", "private_metadata"):
            if view.get(name) is not None and not isinstance(view[name], str):
                return f"view.{name} is not a string"
    return None


async def start_http(bot: Bot, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `bot` over HTTP; returns the runner and the bound port (port 0 picks a free one)."""
    bot.start()
    runner = web.AppRunner(bot.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, bound


def _is_event(body: Any) -> bool:
    return isinstance(body, dict) and body.get("type") == "event_callback"


# How long a stopping process lets acknowledged work finish: Slack will not resend it.
DRAIN_TIMEOUT_S = 20


async def drain_listeners(timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Wait (bounded) for listeners still running after their ack.

    Bolt runs listeners as detached tasks once it has acknowledged the request; stopping
    the process or disposing the engine under them would drop work Slack considers done.
    """
    await drain(timeout)
