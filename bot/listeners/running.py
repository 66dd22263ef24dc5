"""Listeners still running after their ack: what a stopping process waits for (and what
`Bot.idle` asks about).

Bolt acknowledges a request, then runs its listener in a task that nothing awaits. Every
listener is registered through `tracked`, which keeps that task in a registry while the
listener runs. It relies only on bolt's public contract for listeners: a coroutine
function, called with the arguments its parameter names ask for, which bolt reads through
`inspect.unwrap`, so the wrapper made by `functools.wraps` is called exactly as the listener
would be (tests/test_listeners.py holds bolt to that).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("postmortem_bot.app")

Listener = TypeVar("Listener", bound=Callable[..., Awaitable[Any]])

# The tasks running a listener now, in this process (every app in it shares one event loop).
_running: set[asyncio.Task[Any]] = set()


def tracked(listener: Listener) -> Listener:
    """`listener`, recording the task that runs it for as long as it runs."""

    @functools.wraps(listener)
    async def run_tracked(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is None or task in _running:  # not in a task, or tracked already (a listener calling another)
            return await listener(*args, **kwargs)
        _running.add(task)
        try:
            return await listener(*args, **kwargs)
        finally:
            _running.discard(task)

    run_tracked.__tracked__ = True  # type: ignore[attr-defined]
    return run_tracked  # type: ignore[return-value]


def is_tracked(listener: Callable[..., Any]) -> bool:
    return getattr(listener, "__tracked__", False) is True


def listener_tasks() -> list[asyncio.Task[Any]]:
    """The listeners still running."""
    return [task for task in _running if not task.done()]


async def drain(timeout: float) -> None:
    """Wait (at most `timeout` seconds) until no listener is running."""
    # A listener bolt scheduled in this very turn of the loop has not started yet: let it
    # take its first step, which enters `tracked`.
    await asyncio.sleep(0)
    pending = listener_tasks()
    if not pending:
        return
    log.info("waiting for %d acknowledged request(s) to finish", len(pending))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("%d request(s) still running after %ss; stopping anyway", len(pending), timeout)
            return
        await asyncio.wait(pending, timeout=remaining)
        pending = listener_tasks()
