"""Listeners are plain functions wired through `tracked`: what bolt must keep true for that to
work (arguments injected by parameter name through the wrapper, the listener run after its
ack), and that every listener the app registers can be waited for when the process stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.util.utils import get_arg_names_of_callable
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import drain_listeners
from bot.listeners import register_all
from bot.listeners.context import Actor
from bot.listeners.running import is_tracked, listener_tasks, tracked


async def _authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
    return AuthorizeResult(enterprise_id=None, team_id="T0TEST0001", bot_token="xoxb-test", bot_user_id="UBOT000001")


def _app() -> AsyncApp:
    return AsyncApp(
        client=AsyncWebClient(token="xoxb-test"),
        authorize=_authorize,
        request_verification_enabled=False,
        process_before_response=False,
    )


def _command(text: str = "") -> AsyncBoltRequest:
    form = {
        "command": "/probe",
        "text": text,
        "team_id": "T0TEST0001",
        "user_id": "UALICE0001",
        "channel_id": "CINCIDENT1",
        "trigger_id": "1.2.3",
        "response_url": "http://127.0.0.1:9/unused",
    }
    return AsyncBoltRequest(body=urlencode(form), headers={"content-type": ["application/x-www-form-urlencoded"]})


def test_bolt_reads_the_listeners_parameter_names_through_the_wrapper() -> None:
    async def on_probe(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None: ...

    assert get_arg_names_of_callable(tracked(on_probe)) == ["ack", "command", "context"]


async def test_a_listener_is_tracked_from_before_its_ack_until_it_returns_and_drain_waits_for_it() -> None:
    release = asyncio.Event()
    seen: dict[str, Any] = {}

    async def on_probe(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        seen["tracked_at_ack"] = asyncio.current_task() in listener_tasks()
        await ack()
        seen["text"] = command["text"]
        await release.wait()  # still working after the ack, as a listener waiting on the database does
        seen["finished"] = True

    app = _app()
    app.command("/probe")(tracked(on_probe))
    response = await app.async_dispatch(_command("hello"))
    assert response.status == 200, "acknowledged before the listener finished"
    assert seen == {"tracked_at_ack": True, "text": "hello"}, "bolt injected the arguments by name"
    assert len(listener_tasks()) == 1

    await drain_listeners(timeout=0.05)  # bounded: gives up on a listener that does not finish
    assert "finished" not in seen and len(listener_tasks()) == 1

    asyncio.get_running_loop().call_later(0.05, release.set)
    await drain_listeners(timeout=10)
    assert seen.get("finished") and listener_tasks() == []


async def test_a_failing_listener_leaves_the_registry() -> None:
    async def on_probe(ack: AsyncAck) -> None:
        await ack()
        await asyncio.sleep(0.01)  # after bolt has sent the ack on
        raise RuntimeError("boom")

    app = _app()
    app.command("/probe")(tracked(on_probe))
    assert (await app.async_dispatch(_command())).status == 200
    await drain_listeners(timeout=10)
    assert listener_tasks() == []


class _Recorder:
    """Stands in for the app: keeps every function `register_all` wires, and how."""

    def __init__(self) -> None:
        self.wired: list[tuple[str, Callable[..., Any]]] = []

    def __getattr__(self, kind: str) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
        def matcher(*_args: Any, **_kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            def wire(function: Callable[..., Any]) -> Callable[..., Any]:
                self.wired.append((kind, function))
                return function

            return wire

        return matcher


def test_every_listener_the_app_registers_is_tracked() -> None:
    recorder = _Recorder()
    register_all(recorder)  # type: ignore[arg-type]
    assert len(recorder.wired) > 20  # events are not among them: the inbox takes those
    untracked = [f"{kind}: {function.__name__}" for kind, function in recorder.wired if not is_tracked(function)]
    assert not untracked, untracked


def test_the_actor_is_read_once_and_empty_when_a_payload_lacks_it() -> None:
    assert Actor.of({"user": {"id": "UALICE0001"}, "team": {"id": "T0TEST0001"}}) == Actor("T0TEST0001", "UALICE0001")
    assert Actor.of({"user": {"id": "UALICE0001", "team_id": "T0TEST0001"}, "team": None}).known
    assert Actor.of({"user": {"id": "not an id"}, "team": {"id": "T0TEST0001"}}) == Actor("T0TEST0001", "")
    assert not Actor.of({}).known
