"""Socket Mode: the app-level token's websocket, over which Slack sends events, slash commands
and interactivity instead of POSTing them (docs.slack.dev, "Using Socket Mode").

``apps.connections.open`` hands out a ``ws://`` URL to the emulator's own server, where a
client (slack_sdk's ``SocketModeClient``, under bolt's ``AsyncSocketModeHandler``) gets
Slack's ``hello`` and then the envelopes a test sends with
:meth:`SocketMode.send_socket_envelope`, which waits for the client's ack.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from slack_emulator.api import JSON

__all__ = ["SOCKET_PATH", "SocketMode"]

logger = logging.getLogger("postmortem_bot.emulator")

SOCKET_PATH = "/_socket"
SOCKET_ENVELOPE_TYPES = frozenset({"events_api", "slash_commands", "interactive"})
SOCKET_CLOSE_TIMEOUT = 2.0  # seconds stop() waits for a client's answer to our close frame


@dataclass(eq=False)
class SocketConnection:
    """One Socket Mode websocket and the envelopes sent on it still waiting for an ack."""

    id: str
    ws: web.WebSocketResponse
    pending: dict[str, asyncio.Future[JSON]] = field(default_factory=dict)


class SocketMode:
    """The emulator's Socket Mode side: open connections, their tickets, envelopes and acks.

    A part of :class:`slack_emulator.SlackEmulator`, whose server routes ``SOCKET_PATH`` to
    :meth:`_handle_socket` and closes every connection when it stops.
    """

    app_id: str
    _ids: Iterator[int]
    _host: str
    _port: int
    _stopping: asyncio.Event

    def __init__(self) -> None:
        self.socket_acks: list[JSON] = []
        """Every ack a Socket Mode client sent, in arrival order, as received."""

        self._socket_tickets: set[str] = set()  # from apps.connections.open, each good once
        self._sockets: list[SocketConnection] = []  # open connections, oldest first
        self._socket_connected = asyncio.Event()  # set while at least one is open

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
            raise ValueError(f"Socket Mode envelope types are {sorted(SOCKET_ENVELOPE_TYPES)}, not {type!r}")
        if not self._sockets:
            raise RuntimeError("no Socket Mode client is connected; await wait_for_socket_connection() first")
        conn = self._sockets[-1]
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        ack: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        conn.pending[envelope_id] = ack
        try:
            await conn.ws.send_str(json.dumps(envelope))
            logger.debug("socket %s <- %s envelope %s", conn.id, type, envelope_id)
            return await asyncio.wait_for(ack, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"no ack for {type} envelope {envelope_id} within {timeout}s") from None
        finally:
            conn.pending.pop(envelope_id, None)

    def _new_socket_url(self) -> str:
        """A URL for one connection (apps.connections.open): its ticket is good once."""
        # Slack: {"url": "wss://wss-primary.slack.com/link/?ticket=...&app_id=..."}.  The
        # ticket is good for one connection; a client reconnecting asks for a new URL.
        ticket = secrets.token_hex(16)
        self._socket_tickets.add(ticket)
        return f"ws://{self._host}:{self._port}{SOCKET_PATH}?ticket={ticket}&app_id={self.app_id}"

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
        conn = SocketConnection(f"socket-{next(self._ids)}", ws)
        self._sockets.append(conn)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": f"emulator-{self._port}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
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
                    ack.set_exception(
                        ConnectionError(f"Socket Mode connection closed before envelope {envelope_id} was acked")
                    )
            logger.debug("socket %s closed (%d open)", conn.id, len(self._sockets))
        return ws

    def _receive_ack(self, conn: SocketConnection, data: str) -> None:
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
        waiter = next((c.pending[ack["envelope_id"]] for c in self._sockets if ack["envelope_id"] in c.pending), None)
        if waiter is None or waiter.done():
            logger.warning("socket %s: ack for unknown or settled envelope %s", conn.id, ack["envelope_id"])
            return
        waiter.set_result(copy.deepcopy(ack))

    async def _close_sockets(self) -> None:
        """Close every Socket Mode websocket as a server going away does."""
        await asyncio.gather(
            *(conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator stopping") for conn in list(self._sockets)),
            return_exceptions=True,
        )
