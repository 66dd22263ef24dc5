"""Benchmark: resident memory of `postmortem-bot serve` before and after storing 100,000 messages.

`serve` runs as a subprocess on a real port, against the Slack emulator in this process,
with an active incident in the channel. RSS is VmRSS from /proc/<pid>/status, read once the
incident is started (start) and once every message is recorded (after); VmHWM is the peak
over the whole run.

By default 90,000 messages (with their processed event ids) are inserted straight into the
database while `serve` runs, and the last 10,000 go through the real endpoint as signed
`message` events: on this 2-core machine the whole 100,000 over HTTP takes far longer than
the few minutes a benchmark should, and `serve` keeps no per-message state in memory, so
what the database holds is what the seeding reproduces. `--via-http 100000` sends them all.

The sender keeps at most `--backlog` events acknowledged but not yet recorded: bolt acks
before the listener runs, so an open-loop sender faster than the database would measure
a queue of pending listener tasks (and, past 30 s of queue, lose events to the connection
pool's timeout; see bench/intake.py) rather than the memory of what is stored.

    .venv/bin/python bench/memory.py                      # SQLite, 100,000 messages (10,000 over HTTP)
    .venv/bin/python bench/memory.py --database pg        # PostgreSQL on 127.0.0.1 (or a URL)
    .venv/bin/python bench/memory.py --messages 100000 --via-http 100000 --concurrency 8 --backlog 200
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
import uuid
from datetime import UTC, datetime

from intake import (
    CHANNEL,
    PEOPLE,
    SlackDriver,
    bench_workspace,
    count,
    drop_scratch,
    envelope,
    resolve_database,
    scratch_database,
    send_all,
    start_incident,
    start_serve,
    wait_recorded,
)
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import create_engine
from storage.models import Message, ProcessedEvent

BATCH = 1_000
SEED_CHUNK = 5_000


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


async def seed(url: str, team_id: str, messages: int) -> None:
    """Insert `messages` messages of the active incident, and their event ids, as intake would."""
    engine = create_engine(url)  # the bot's own engine set-up: on SQLite it queues for the write lock
    base = int(time.time()) - 86_400  # a day ago: never the ts of a message sent over HTTP later
    try:
        async with engine.begin() as conn:
            incident_id = (await conn.execute(text("SELECT id FROM incidents WHERE status = 'active'"))).scalar_one()
        for start in range(0, messages, SEED_CHUNK):
            numbers = range(start, min(messages, start + SEED_CHUNK))
            now = datetime.now(UTC)
            async with engine.begin() as conn:
                await conn.execute(
                    insert(Message),
                    [
                        {
                            "team_id": team_id,
                            "channel_id": CHANNEL,
                            "ts": f"{base + n // 1_000_000}.{n % 1_000_000:06d}",
                            "incident_id": incident_id,
                            "user_id": PEOPLE[n % len(PEOPLE)],
                            "text": f"step {n}: error rate {n % 100}% on checkout-api, rolling back deploy #{n}",
                            "thread_ts": None,
                            "file_names": [],
                            "posted_at": now,
                            "deleted": False,
                            "source": "event",
                        }
                        for n in numbers
                    ],
                )
                await conn.execute(
                    insert(ProcessedEvent),
                    [
                        {"team_id": team_id, "event_id": f"EvSEED{uuid.uuid4().hex[:10].upper()}", "received_at": now}
                        for _ in numbers
                    ],
                )
    finally:
        await engine.dispose()


def message_bodies(driver: SlackDriver, first: int, size: int) -> list[str]:
    bodies = []
    for n in range(first, first + size):
        _message, event = driver.posted_event(
            CHANNEL,
            PEOPLE[n % len(PEOPLE)],
            f"step {n}: error rate {n % 100}% on checkout-api, rolling back deploy #{n}",
        )
        bodies.append(envelope(driver.emulator, event))
    return bodies


async def run(name: str, messages: int, via_http: int, concurrency: int, backlog: int) -> None:
    workdir = tempfile.mkdtemp(prefix="pm-memory-")
    url, admin_url = await scratch_database(resolve_database(name, workdir))
    backend = url.split(":", 1)[0]
    secret = secrets.token_hex(16)
    emulator = await bench_workspace("inc-memory-bench")
    serve = start_serve(emulator, secret, url, workdir, profile=None)
    reader = create_async_engine(url)
    driver = SlackDriver(emulator, serve.url, secret)
    try:
        await serve.wait_healthy("/healthz")
        await start_incident(driver, emulator, reader)
        pid = serve.process.pid
        at_start = memory_kib(pid)["VmRSS"]
        seeded = messages - via_http
        started = time.perf_counter()
        await seed(url, emulator.team_id, seeded)
        seed_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sent = 0
        while sent < via_http:
            size = min(BATCH, via_http - sent)
            bodies = message_bodies(driver, sent, size)
            load = await send_all(serve.url + "/slack/events", secret, bodies, concurrency)
            if load.failures:
                raise RuntimeError(f"{load.failures} requests were not answered 200; see {serve.log_path}")
            sent += size
            recorded, _ = await wait_recorded(reader, seeded + max(0, sent - backlog))
            if recorded < seeded + sent - backlog:
                raise RuntimeError(f"serve stopped recording at {recorded} events; see {serve.log_path}")
        await wait_recorded(reader, seeded + sent)
        seconds = time.perf_counter() - started
        stored = await count(reader, "SELECT count(*) FROM messages")
        after = memory_kib(pid)
        print(
            f"{backend}: {stored:,} messages stored: {seeded:,} inserted directly in {seed_seconds:.0f} s, "
            f"{sent:,} through POST /slack/events in {seconds:.0f} s ({sent / seconds:,.0f}/s, "
            f"concurrency {concurrency}, backlog at most {backlog})"
        )
        print(
            f"  RSS at start {mib(at_start)}, after {mib(after['VmRSS'])}, delta {mib(after['VmRSS'] - at_start)}; "
            f"peak (VmHWM) {mib(after['VmHWM'])}"
        )
        if stored != messages:
            print(f"  WARNING: {messages - stored} messages not stored; see {serve.log_path}")
    finally:
        await driver.close()
        serve.stop()
        await reader.dispose()
        await emulator.stop()
        if admin_url:
            await drop_scratch(url, admin_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite", help="'sqlite' (default), 'pg' (postgres@127.0.0.1) or a URL")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--via-http", type=int, default=10_000, help="how many of them go through POST /slack/events")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backlog", type=int, default=200, help="most events acknowledged but not yet recorded")
    args = parser.parse_args()
    asyncio.run(run(args.database, args.messages, min(args.via_http, args.messages), args.concurrency, args.backlog))
