"""Benchmark: event intake through a real `postmortem-bot serve`, against bolt's own ceiling.

What it measures, per database and per number of concurrent connections (1, 8, 32):

* ours: signed Events API requests (2/3 `message`, 1/6 `reaction_added` :pushpin:, 1/6
  `reaction_removed` :pushpin:) POSTed to `postmortem-bot serve` running as a subprocess on a
  real port, configured against the Slack emulator (which runs in this process), with an
  incident started in the channel first so every message is really stored. Events/s is
  requests acknowledged per second of load; ack p50/p99 is the HTTP response time of a POST.
* ceiling: the same requests against a slack-bolt AsyncApp with no-op event listeners, its
  own signing check, served the same way as ours (aiohttp, `to_bolt_request`,
  `async_dispatch`, `to_aiohttp_response`), also as a subprocess. ours/ceiling is the ratio
  of acknowledged events per second.
  Only 200 answers count: a 503 is sent again after a pause, as Slack retries, and the time
  it costs is in the rate.
* durable: the bot answers 200 once the delivery is committed to its inbox. Right after the
  last 200 of a level we count the level's event ids that the database holds (inbox or
  applied): every acknowledged event must be there.
* applied: events reach the timeline after their ack, from the inbox. We poll until every
  event of the level is applied and print how long that took after the last ack, and the
  throughput from the first request to the last application ("applied/s").

The load generator is an asyncio aiohttp client in this process: `--concurrency` workers
share one keep-alive connection each, every request signed at send time. The machine's
cores are shared by this process, the server under test and (for PostgreSQL) the database.

    .venv/bin/python bench/intake.py                       # SQLite, then PostgreSQL on 127.0.0.1
    .venv/bin/python bench/intake.py --database sqlite     # one backend only (or a full URL)
    .venv/bin/python bench/intake.py --events 5000 --concurrency 1,8,32
    .venv/bin/python bench/intake.py --database sqlite --profile /tmp/intake-profile.txt
        # serve runs under pyinstrument (pip install pyinstrument); the text profile is written at exit
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from slack_emulator import SlackEmulator
from slack_emulator.driver import API_APP_ID, SlackDriver

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1/postgres"
CHANNEL = "CBENCHINTAKE"
PEOPLE = [f"UBENCH{n:04d}" for n in range(20)]
WARMUP_EVENTS = 200
# No new event recorded for this long means the rest is lost, not late (bolt's pool waits 30 s).
STALL_S = 45.0
REPO = Path(__file__).resolve().parent.parent


# --- the signed requests ---------------------------------------------------------------------


def envelope(emulator: SlackEmulator, event: dict[str, Any]) -> str:
    """An Events API envelope as Slack sends it (the shape slack_emulator.driver sends)."""
    return json.dumps(
        {
            "token": "unused-verification-token",
            "team_id": emulator.team_id,
            "api_app_id": API_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": emulator.team_id,
                    "user_id": emulator.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{uuid.uuid4().hex}",
        }
    )


def build_events(driver: SlackDriver, count: int) -> list[str]:
    """`count` envelopes in blocks of six: four messages, a pushpin on the block's first
    message, and the removal of the previous block's pushpin. Each message exists in the
    emulator before its event is built, as in Slack, so a reaction processed before its
    message can still fetch it."""
    bodies: list[str] = []
    pinned: tuple[str, str] | None = None  # (ts, user) of the previous block's pushpin
    n = 0
    while len(bodies) < count:
        posted = []
        for _ in range(4):
            user = PEOPLE[n % len(PEOPLE)]
            message, event = driver.posted_event(
                CHANNEL,
                user,
                f"step {n}: error rate {n % 100}% on checkout-api, <@{PEOPLE[(n + 1) % len(PEOPLE)]}> "
                f"is rolling back deploy #{n} &amp; watching p99",
            )
            posted.append(message)
            bodies.append(envelope(driver.emulator, event))
            n += 1
        pinner = PEOPLE[n % len(PEOPLE)]
        bodies.append(
            envelope(driver.emulator, driver.reacted_event(CHANNEL, posted[0]["ts"], pinner, "pushpin", added=True))
        )
        if pinned is not None:
            bodies.append(envelope(driver.emulator, driver.reacted_event(CHANNEL, *pinned, "pushpin", added=False)))
        pinned = (posted[0]["ts"], pinner)
    return bodies[:count]


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }


@dataclass
class Load:
    events: int
    seconds: float
    latencies: list[float]
    failures: int  # answers other than 200 and 503
    deferred: int = 0  # 503 "busy": sent again, as Slack retries an unacknowledged event

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


RETRY_PAUSE_S = 0.2  # Slack waits about a minute before its first retry; the bench does not


async def send_all(url: str, secret: str, bodies: list[str], concurrency: int) -> Load:
    """POST every body from `concurrency` workers, each on its own keep-alive connection.

    A 503 (the bot's backlog is full) is sent again after a pause with Slack's retry header,
    as Slack does, so every event is eventually acknowledged once."""
    pending: deque[tuple[bytes, int]] = deque((b.encode(), 0) for b in bodies)
    in_flight = 0
    latencies: list[float] = []
    failures = deferred = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal failures, deferred, in_flight
            while pending or in_flight:
                if not pending:
                    await asyncio.sleep(0.01)  # a deferred event may come back to the queue
                    continue
                body, attempt = pending.popleft()
                in_flight += 1
                headers = signed_headers(secret, body)
                if attempt:
                    headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"})
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status == 503:
                    deferred += 1
                    await asyncio.sleep(RETRY_PAUSE_S)
                    pending.append((body, attempt + 1))
                elif response.status != 200:
                    failures += 1
                in_flight -= 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Load(len(bodies), seconds, latencies, failures, deferred)


# --- the servers under load ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log_path: Path

    async def wait_healthy(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
                try:
                    async with session.get(self.url + path) as response:
                        if response.status < 500:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not answering after {timeout}s; see {self.log_path}")
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # serve drains listeners, pyinstrument writes out
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far, all threads (aiosqlite's included)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_lines(self, needle: str) -> int:
        return sum(needle in line for line in self.log_path.read_text(errors="replace").splitlines())


def start_serve(emulator: SlackEmulator, secret: str, database_url: str, workdir: str, profile: str | None) -> Server:
    """`postmortem-bot serve` against the emulator, as operators run it (default log level)."""
    port = free_port()
    env = dict(
        os.environ,
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET=secret,
        SLACK_API_URL=emulator.api_url,
        DATABASE_URL=database_url,
    )
    command = [str(Path(sys.executable).parent / "postmortem-bot"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if profile:
        command = [
            sys.executable,
            "-m",
            "pyinstrument",
            "--renderer",
            "text",
            "-o",
            profile,
            "-m",
            "bot",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    log_path = Path(workdir) / f"serve-{port}.log"
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    return Server(process, f"http://127.0.0.1:{port}", log_path)


def start_ceiling(secret: str, workdir: str) -> Server:
    port = free_port()
    log_path = Path(workdir) / f"ceiling-{port}.log"
    process = subprocess.Popen(
        [sys.executable, __file__, "ceiling", "--port", str(port)],
        env=dict(os.environ, SLACK_SIGNING_SECRET=secret),
        cwd=workdir,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    return Server(process, f"http://127.0.0.1:{port}", log_path)


def serve_ceiling(port: int) -> None:
    """The framework's ceiling: bolt with no-op listeners, its signing check, our HTTP shape."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.authorization import AuthorizeResult

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id=team_id, bot_token="xoxb-ceiling", bot_user_id="UBOT000001", bot_id="BBOT000001"
        )

    app = AsyncApp(
        signing_secret=os.environ["SLACK_SIGNING_SECRET"], authorize=authorize, process_before_response=False
    )

    async def noop() -> None:
        pass

    for kind in ("message", "reaction_added", "reaction_removed"):
        app.event(kind)(noop)

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    web.run_app(web_app, host="127.0.0.1", port=port, access_log=None, print=None)


# --- the database, read from outside ---------------------------------------------------------


def resolve_database(name: str, workdir: str) -> str:
    if name == "sqlite":
        return f"sqlite+aiosqlite:///{workdir}/intake.db"
    if name in ("pg", "postgresql"):
        return DEFAULT_PG
    return name


async def scratch_database(url: str) -> tuple[str, str | None]:
    """A fresh database on a PostgreSQL server (like bench/sweep.py); SQLite URLs pass through."""
    if not url.startswith("postgresql"):
        return url, None
    name = f"pm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}", url


async def drop_scratch(url: str, admin_url: str) -> None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def count(engine: AsyncEngine, sql: str) -> int:
    # A plain engine: on SQLite a WAL reader, so polling never takes the bot's write lock.
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar_one()


async def durable(engine: AsyncEngine) -> int:
    """Event ids the database holds, applied or waiting in the inbox."""
    return await count(
        engine,
        "SELECT count(*) FROM (SELECT event_id FROM event_inbox UNION SELECT event_id FROM processed_events) AS e",
    )


async def wait_recorded(engine: AsyncEngine, target: int) -> tuple[int, float]:
    """Poll until `target` events are recorded or nothing moves for STALL_S; returns (recorded, seconds)."""
    started = time.perf_counter()
    last, last_change = -1, started
    while True:
        recorded = await count(engine, "SELECT count(*) FROM processed_events")
        now = time.perf_counter()
        if recorded >= target:
            return recorded, now - started
        if recorded != last:
            last, last_change = recorded, now
        elif now - last_change > STALL_S:
            return recorded, last_change - started
        await asyncio.sleep(0.02)


async def scrape(server: Server) -> dict[str, float]:
    """The server's GET /metrics, as {sample name with labels: value}."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/metrics") as response:
            text_body = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text_body):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "le")
            if "le" not in sample.labels:
                values[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return values


def mean_of(after: dict[str, float], before: dict[str, float], name: str) -> float:
    count = after.get(name + "_count", 0) - before.get(name + "_count", 0)
    return (after.get(name + "_sum", 0) - before.get(name + "_sum", 0)) / count if count else 0.0


async def start_incident(driver: SlackDriver, emulator: SlackEmulator, engine: AsyncEngine) -> None:
    delivery = await driver.slash_command(CHANNEL, PEOPLE[0], "start Checkout failing (intake benchmark) --sev 2")
    assert delivery.status == 200, delivery.text
    deadline = time.monotonic() + 20
    # The card is pinned at the end of `start`; by then the incident captures messages.
    while not emulator.pins(CHANNEL) or not await count(
        engine, "SELECT count(*) FROM incidents WHERE status = 'active'"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("the incident did not start")
        await asyncio.sleep(0.05)


# --- one run -----------------------------------------------------------------------------------


def describe(load: Load) -> str:
    return (
        f"{load.rate:7,.0f} ev/s  ack p50 {load.percentile(0.50) * 1000:6.1f} ms  "
        f"p99 {load.percentile(0.99) * 1000:6.1f} ms"
    )


async def bench_workspace(channel_name: str) -> SlackEmulator:
    """A started emulator with the bench's people and its incident channel."""
    emulator = SlackEmulator()
    for person in PEOPLE:
        emulator.add_user(person, person.lower())
    emulator.add_channel(CHANNEL, channel_name, members=list(PEOPLE))
    await emulator.start()
    return emulator


async def run_database(name: str, levels: list[int], events: int, profile: str | None) -> None:
    workdir = tempfile.mkdtemp(prefix="pm-intake-")
    url, admin_url = await scratch_database(resolve_database(name, workdir))
    backend = url.split(":", 1)[0]
    secret = secrets.token_hex(16)
    emulator = await bench_workspace("inc-intake-bench")
    serve = start_serve(emulator, secret, url, workdir, profile)
    ceiling = start_ceiling(secret, workdir)
    reader = create_async_engine(url)
    driver = SlackDriver(emulator, serve.url, secret)
    try:
        await serve.wait_healthy("/healthz")
        await ceiling.wait_healthy("/healthz")
        await start_incident(driver, emulator, reader)
        expected = 0
        for label, concurrency, size in [("warm-up", 8, WARMUP_EVENTS)] + [(f"c={c}", c, events) for c in levels]:
            bodies = build_events(driver, size)
            fetches_before = len(emulator.calls_to("conversations.history"))
            expected += size
            cpu_before = serve.cpu_seconds()
            metrics_before = await scrape(serve)
            ours = await send_all(serve.url + "/slack/events", secret, bodies, concurrency)
            held = await durable(reader)
            recorded, drain = await wait_recorded(reader, expected)
            cpu_per_event = (serve.cpu_seconds() - cpu_before) / size
            metrics = await scrape(serve)
            theirs = await send_all(ceiling.url + "/slack/events", secret, bodies, concurrency)
            if label == "warm-up":
                continue
            lost = expected - recorded
            print(
                f"{backend:10} {label:5} ours   {describe(ours)}  non-200: {ours.failures}  "
                f"503 busy (resent): {ours.deferred}"
            )
            print(f"{'':10} {'':5} bolt   {describe(theirs)}  non-200: {theirs.failures}")
            print(
                f"{'':10} {'':5} /metrics: {mean_of(metrics, metrics_before, 'postmortem_intake_batch_size'):.1f} "
                f"events a commit, commit {mean_of(metrics, metrics_before, 'postmortem_intake_commit_seconds') * 1000:.2f} ms; "
                f"{mean_of(metrics, metrics_before, 'postmortem_intake_apply_batch_size'):.1f} events applied a "
                f"transaction, lag {mean_of(metrics, metrics_before, 'postmortem_intake_lag_seconds') * 1000:.0f} ms on average; "
                f"refused {sum(v for k, v in metrics.items() if k.startswith('postmortem_events_refused_total')):.0f}"
            )
            outcome = (
                f"all {size} applied {drain:.2f} s after the last ack"
                if not lost
                else (f"{lost} of {size} NEVER APPLIED (applying stopped {drain:.2f} s after the last ack)")
            )
            print(
                f"{'':10} {'':5} ratio  {ours.rate / theirs.rate:.2f} of the ceiling;  durable at the last ack: "
                f"{held - (expected - size)} of {size};  {outcome};  "
                f"applied/s {(size - lost) / (ours.seconds + drain):,.0f};  serve CPU {cpu_per_event * 1000:.2f} ms/event;  "
                f"{len(emulator.calls_to('conversations.history')) - fetches_before} message fetches"
            )
            expected = recorded  # a lost event never arrives; the next level counts from here
        messages = await count(reader, "SELECT count(*) FROM messages")
        print(
            f"{backend:10} total  {messages} messages stored; serve logged {serve.log_lines(' ERROR ')} errors, "
            f"{serve.log_lines(' WARNING ')} warnings ({serve.log_path})"
        )
    finally:
        await driver.close()
        serve.stop()
        ceiling.stop()
        await reader.dispose()
        await emulator.stop()
        if admin_url:
            await drop_scratch(url, admin_url)
    if profile:
        print(f"profile of serve written to {profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database",
        action="append",
        help="'sqlite', 'pg' (postgres@127.0.0.1) or a database URL; repeatable (default: sqlite and pg)",
    )
    parser.add_argument("--events", type=int, default=3000, help="events per concurrency level")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connection counts")
    parser.add_argument("--profile", help="run serve under pyinstrument and write its text profile here")
    if sys.argv[1:2] == ["ceiling"]:
        ceiling = argparse.ArgumentParser()
        ceiling.add_argument("ceiling")
        ceiling.add_argument("--port", type=int, required=True)
        serve_ceiling(ceiling.parse_args().port)
        return
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    print(
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.events} events per level "
        "(2/3 message, 1/3 pushpin added/removed)"
    )
    for name in args.database or ["sqlite", "pg"]:
        asyncio.run(run_database(name, levels, args.events, args.profile))
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other work on the machine skews the numbers)")


if __name__ == "__main__":
    main()
