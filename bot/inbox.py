"""The event inbox: an Events API delivery is committed before it is answered 200, and
applied to the timeline after.

Slack never resends an event it got a 200 for, so an acknowledgement must mean "stored". One
writer per process commits the deliveries that arrived while the previous commit ran, in one
statement and one transaction (group commit), and each waiting request is answered when its
batch is committed: at one connection a commit per event, under load hundreds per commit.

Applying (bot/intake.py) runs behind, in arrival order, in batches: a crash between the two
loses nothing, because the next start (or another replica) applies what is left, and
applying twice changes nothing (event ids are recorded with their effects). Acks come first:
the applier waits while deliveries are waiting for their commit.

A delivery is refused (503, for Slack to retry) only when the database cannot take it in
time: the commit failed, or did not finish within 2.5 s, or the one before it has been
running longer than that (a locked or stalled database). Every
refusal is counted (`postmortem_events_refused`) and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from bot.clock import Clock
from bot.intake import IntakeService, envelope
from bot.metrics import (
    EVENTS_APPLIED,
    EVENTS_FAILED,
    EVENTS_RECEIVED,
    EVENTS_REFUSED,
    EVENTS_STORED,
    INTAKE_APPLY_BATCH_SIZE,
    INTAKE_BACKLOG,
    INTAKE_BATCH_SIZE,
    INTAKE_COMMIT_SECONDS,
    INTAKE_LAG_SECONDS,
)
from bot.payloads import MalformedPayload
from storage.db import DatabaseUnavailable, SessionFactory, dialect_name
from storage.inbox import commit_deliveries, forget_deliveries, inbox_backlog, note_failure, take_deliveries
from storage.models import InboxEvent

log = logging.getLogger("postmortem_bot.inbox")

# Deliveries committed together at most; more wait for the next commit. On PostgreSQL, how
# many commits may be in flight at once (each on its own pooled connection).
MAX_COMMIT_BATCH = 500
COMMITS_IN_FLIGHT = 3
# Deliveries applied in one transaction: short enough that a commit waiting behind it on
# SQLite's one connection still answers well inside Slack's 3 s.
APPLY_BATCH = 100
# A commit running longer than this means the database is stalled: an event that waited for
# it would miss Slack's 3 s anyway, so it is refused at once and Slack retries it.
STALLED_COMMIT_S = 2.0
# How long a delivery waits for its commit before it is refused instead (Slack waits 3 s).
ACK_DEADLINE_S = 2.5
# Commits closer together than this are a stream: the applier lets a batch gather, at most
# LINGER_S, and applies at once when the stream pauses for as long.
STREAM_GAP_S = 0.05
LINGER_S = 0.1
# How often the applier looks for deliveries it was not told about (another replica's, or
# left by a crash), and how long it lets acks go first before applying anyway.
POLL_S = 2.0
MAX_DEFER_S = 2.0
# Attempts before a delivery that cannot be applied is set aside (kept, counted, logged).
MAX_ATTEMPTS = 5


class InboxRefused(Exception):
    """The delivery was not stored: answer 503 so that Slack retries it."""


class NotForUs(Exception):
    """A delivery from another workspace: acknowledged and dropped."""


@dataclass
class _Waiting:
    row: dict[str, Any]
    committed: asyncio.Future[None]


@dataclass
class _Refusals:
    """An episode of refusals, logged once when it starts and once when it ends."""

    count: int = 0
    since: float | None = None
    reasons: dict[str, int] = field(default_factory=dict)


class EventInbox:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: SessionFactory,
        clock: Clock,
        intake: IntakeService,
        own_team: Callable[[], str | None],
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.intake = intake
        self.own_team = own_team
        self._waiting: list[_Waiting] = []
        self._commits_started: dict[int, float] = {}  # batch -> when its commit began
        self._committing: set[asyncio.Task[None]] = set()
        self._writer_idle_connections: list[AsyncConnection] = []
        self._wake_writer = asyncio.Event()
        self._wake_applier = asyncio.Event()
        self._writer_idle = asyncio.Event()
        self._writer_idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._refusals = _Refusals()
        self._stopping = False
        self._dialect: str | None = None
        self._last_commit = 0.0
        self._commit_gap = float("inf")
        self._backlog_reported = 0.0
        self._committed_since_apply = 0

    # --- taking deliveries --------------------------------------------------------------

    async def accept(self, raw_body: str, body: Mapping[str, Any]) -> None:
        """Return once the delivery is committed. Raises MalformedPayload (no team or event
        id: nothing to record it by), NotForUs, or InboxRefused."""
        EVENTS_RECEIVED.inc()
        team_id, event_id = envelope(body)
        own = self.own_team()
        if own is not None and team_id != own:
            raise NotForUs(team_id)
        if self._commits_started and time.monotonic() - min(self._commits_started.values()) > STALLED_COMMIT_S:
            self._refuse("stalled")
        if not self._tasks:
            raise RuntimeError("the inbox is not started")
        waiting = _Waiting(
            {"team_id": team_id, "event_id": event_id, "received_at": self.clock.now(), "body": raw_body},
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(waiting)
        self._wake_writer.set()
        self._writer_idle.clear()
        try:
            # Past Slack's 3 s the ack is worthless: Slack retries, and the row, if it commits
            # after all, makes the retry a no-op.
            await asyncio.wait_for(asyncio.shield(waiting.committed), ACK_DEADLINE_S)
        except TimeoutError:
            self._refuse("slow_commit")
        except InboxRefused:
            self._refuse("database")
        self._end_refusals()
        EVENTS_STORED.inc()

    def _refuse(self, reason: str) -> None:
        EVENTS_REFUSED.labels(reason=reason).inc()
        episode = self._refusals
        if episode.since is None:
            episode.since = time.monotonic()
            log.warning("refusing events (%s): Slack will retry them", reason)
        episode.count += 1
        episode.reasons[reason] = episode.reasons.get(reason, 0) + 1
        raise InboxRefused(reason)

    def _end_refusals(self) -> None:
        episode = self._refusals
        if episode.since is not None:
            log.warning(
                "taking events again after refusing %d over %.1f s (%s)",
                episode.count,
                time.monotonic() - episode.since,
                ", ".join(f"{k}: {v}" for k, v in sorted(episode.reasons.items())),
            )
            self._refusals = _Refusals()

    async def _write_forever(self) -> None:
        """Commit what waits, in batches; on PostgreSQL several commits at once (each waits on
        its own WAL flush, so a connection that waits for one leaves the next idle), on SQLite
        one (one writer at a time)."""
        slots = asyncio.Semaphore(COMMITS_IN_FLIGHT if await self._locks_rows() else 1)
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            while self._waiting:
                await slots.acquire()
                if not self._waiting:
                    slots.release()
                    break
                batch, self._waiting = self._waiting[:MAX_COMMIT_BATCH], self._waiting[MAX_COMMIT_BATCH:]
                commit = asyncio.ensure_future(self._commit(batch))
                self._committing.add(commit)
                commit.add_done_callback(lambda task: self._committed(task, slots))
            if not self._committing:
                self._writer_idle.set()

    @asynccontextmanager
    async def _writer_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one commit. On PostgreSQL the writer keeps its own open between
        commits (no pool checkout and pre-ping per acknowledgement); one that failed is
        dropped. SQLite's single pooled connection is shared, so it is taken each time."""
        if not await self._locks_rows():
            async with self.engine.connect() as conn:
                yield conn
            return
        conn = self._writer_idle_connections.pop() if self._writer_idle_connections else await self.engine.connect()
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()
            raise
        self._writer_idle_connections.append(conn)

    def _committed(self, task: asyncio.Task[None], slots: asyncio.Semaphore) -> None:
        self._committing.discard(task)
        slots.release()
        if not self._committing and not self._waiting:
            self._writer_idle.set()

    async def _commit(self, batch: list[_Waiting]) -> None:
        started = time.monotonic()
        self._commits_started[id(batch)] = started
        try:
            async with self._writer_connection() as conn:
                await commit_deliveries(conn, [w.row for w in batch])
        except Exception as exc:  # the database: every waiting request gets its 503
            log.error("could not store %d event(s): %s", len(batch), exc)
            for waiting in batch:
                if not waiting.committed.done():
                    waiting.committed.set_exception(InboxRefused("database"))
            return
        finally:
            del self._commits_started[id(batch)]
        now = time.monotonic()
        self._commit_gap, self._last_commit = now - self._last_commit, now
        self._committed_since_apply += len(batch)
        INTAKE_COMMIT_SECONDS.observe(now - started)
        INTAKE_BATCH_SIZE.observe(len(batch))
        for waiting in batch:
            if not waiting.committed.done():  # the request may have gone (client closed)
                waiting.committed.set_result(None)
        self._wake_applier.set()

    # --- applying them ------------------------------------------------------------------

    async def _apply_forever(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake_applier.wait(), POLL_S)
            except TimeoutError:
                pass
            self._wake_applier.clear()
            await self._gather()
            try:
                # Full batches back to back (a backlog); a partial one means caught up.
                while not self._stopping:
                    await self._acks_first()
                    if await self.apply_next_batch() < APPLY_BATCH:
                        break
                await self._report_backlog()
                failures = 0
            except Exception as exc:  # the database went away, or a conflict: the rows wait for the next try
                failures += 1
                level = logging.WARNING if failures < 3 else logging.ERROR  # a hiccup, then a problem
                log.log(level, "could not apply stored events (attempt %d): %s", failures, exc)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))

    async def _gather(self) -> None:
        """While deliveries stream in, let a batch gather before applying (bounded): one
        transaction for many events costs far less than one each, and at one connection
        every apply makes the next ack wait. A lone event is applied at once."""
        deadline = time.monotonic() + LINGER_S
        while (
            not self._stopping
            and self._commit_gap < STREAM_GAP_S
            and time.monotonic() < deadline
            and self._committed_since_apply < APPLY_BATCH
            and time.monotonic() - self._last_commit < STREAM_GAP_S
        ):
            await asyncio.sleep(0.005)
        self._committed_since_apply = 0

    async def _acks_first(self) -> None:
        """Let waiting deliveries commit before the next batch takes the database (bounded)."""
        try:
            await asyncio.wait_for(self._writer_idle.wait(), MAX_DEFER_S)
        except TimeoutError:
            pass

    async def _report_backlog(self) -> None:
        if time.monotonic() - self._backlog_reported < POLL_S:
            return
        self._backlog_reported = time.monotonic()
        async with self.sessions() as session:
            INTAKE_BACKLOG.set(await inbox_backlog(session))

    async def apply_next_batch(self) -> int:
        """Apply the oldest stored deliveries; how many were taken (0: none waiting).

        On PostgreSQL the rows stay locked (FOR UPDATE SKIP LOCKED, in a transaction of their
        own) while they are applied, so two replicas never apply the same ones at once. On
        SQLite, which has one writer at a time and one connection, they are read, applied and
        then forgotten; a crash in between only applies them again, which changes nothing.
        """
        if await self._locks_rows():
            async with self.sessions.begin() as lease:
                rows = await take_deliveries(lease, APPLY_BATCH)
                if rows:
                    await self._settle(lease, rows, await self._apply(rows))
                return len(rows)
        async with self.sessions() as session:
            rows = await take_deliveries(session, APPLY_BATCH)
        if rows:
            outcome = await self._apply(rows)
            async with self.sessions.begin() as session:
                await self._settle(session, rows, outcome)
        return len(rows)

    async def _locks_rows(self) -> bool:
        if self._dialect is None:
            async with self.sessions() as session:
                self._dialect = dialect_name(session)
        return self._dialect == "postgresql"

    async def _apply(self, rows: list[InboxEvent]) -> dict[int, str | None]:
        """Apply `rows` in order: {row id: None when applied, else why not}. Raises when the
        database itself failed, so that the rows wait, untouched, for the next attempt."""
        bodies: dict[int, Mapping[str, Any]] = {}
        outcome: dict[int, str | None] = {}
        for row in rows:
            try:
                body = json.loads(row.body)
                envelope(body)
                bodies[row.id] = body
            except (ValueError, MalformedPayload) as exc:  # stored as received, so never expected
                outcome[row.id] = f"unreadable: {exc}"
        try:
            await self.intake.apply(list(bodies.values()))
            return outcome | dict.fromkeys(bodies)
        except Exception as exc:
            if transient(exc):
                raise
            log.warning("a batch of %d events failed (%s); applying them one by one", len(bodies), exc)
        for row_id, body in bodies.items():
            try:
                await self.intake.apply([body])
                outcome[row_id] = None
            except Exception as exc:
                if transient(exc):
                    raise
                log.exception("event %s could not be applied", body.get("event_id"))
                outcome[row_id] = f"{exc.__class__.__name__}: {exc}"
        return outcome

    async def _settle(self, session: AsyncSession, rows: list[InboxEvent], outcome: dict[int, str | None]) -> None:
        applied = [row for row in rows if outcome.get(row.id) is None]
        await forget_deliveries(session, [row.id for row in applied])
        for row in rows:
            error = outcome.get(row.id)
            if error is not None and await note_failure(session, row.id, error, MAX_ATTEMPTS):
                EVENTS_FAILED.inc()
                log.error("event %s set aside after %d attempts: %s", row.event_id, MAX_ATTEMPTS, error)
        now = self.clock.now()
        for row in applied:
            INTAKE_LAG_SECONDS.observe(max(0.0, (now - row.received_at).total_seconds()))
        EVENTS_APPLIED.inc(len(applied))
        INTAKE_APPLY_BATCH_SIZE.observe(len(rows))

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._tasks:
            self._stopping = False
            self._tasks = [
                asyncio.ensure_future(self._write_forever()),
                asyncio.ensure_future(self._apply_forever()),
            ]

    async def stop(self, timeout: float = 5.0) -> None:
        """Commit what is waiting, apply what can be applied within `timeout`, and stop.
        Whatever is left is in the database for the next start."""
        if not self._tasks:
            return
        writer, applier = self._tasks
        deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake_applier.set()
        try:
            await asyncio.wait_for(self._writer_idle.wait(), timeout)
            await asyncio.wait_for(asyncio.shield(applier), max(0.0, deadline - time.monotonic()))
            await asyncio.wait_for(self._drain(), max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # a slow or absent database: the rows wait for the next start
            log.info("left stored events for the next start (%s)", exc.__class__.__name__ or "timeout")
        for task in (writer, applier):
            task.cancel()
        await asyncio.gather(writer, applier, return_exceptions=True)
        self._tasks = []
        while self._writer_idle_connections:
            with contextlib.suppress(Exception):
                await self._writer_idle_connections.pop().close()

    async def _drain(self) -> None:
        while await self.apply_next_batch():
            pass

    async def caught_up(self, timeout: float) -> bool:
        """Wait, at most `timeout` seconds, until what was stored before is applied (a start-up
        sync after that repairs only what Slack never delivered); False if it was not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.applied():
                    return True
            except Exception:  # the database: the sync will say so itself
                return False
            await asyncio.sleep(0.05)
        return False

    async def applied(self) -> bool:
        """Whether nothing is waiting to be committed or applied (tests and shutdown)."""
        if self._waiting:
            return False
        async with self.sessions() as session:
            return await inbox_backlog(session) == 0


# What says the database, not the event, is the problem: the rows wait for the next attempt.
TRANSIENT: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, DatabaseUnavailable, OSError)
# PostgreSQL's deadlock_detected and serialization_failure: another transaction won; try again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRY_SQLSTATES
