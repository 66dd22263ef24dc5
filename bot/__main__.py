"""The `postmortem-bot` command: serve, run, migrate, export, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, Sequence

from bot.config import ConfigError, Settings

if TYPE_CHECKING:
    from bot.app import Bot

log = logging.getLogger("postmortem_bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postmortem-bot", description="Slack bot for incident post-mortems.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="HTTP mode: POST /slack/events, GET /healthz")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    sub.add_parser("run", help="Socket Mode (needs SLACK_APP_TOKEN)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    sweep = sub.add_parser("sweep", help="send the nudges due at an instant, once, and exit")
    sweep.add_argument("--at", help="ISO 8601 instant (default: now); naive times are UTC")
    demo = sub.add_parser("demo", help="play a short incident against the built-in Slack emulator")
    demo.add_argument("--database-url", help="where to keep the demo's data (default: a new SQLite file)")
    export = sub.add_parser("export", help="print the latest incident's document for a channel")
    export.add_argument("--channel", required=True, help="Slack channel id, e.g. C0123456")
    export.add_argument("--format", choices=("md", "html", "json"), default="md")
    return parser


def configure_logging(level: str) -> None:
    """The process's log: one line per record on stderr, at LOG_LEVEL."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if level != "DEBUG":
        # At INFO the log says what the bot did. Alembic narrates every plugin it loads; the
        # revision we reach is logged by us. APScheduler logs every tick twice ("Running job",
        # "executed successfully"): two lines a minute saying nothing happened; a sweep logs
        # what it sent itself, and APScheduler's warnings (a missed or overlapping run) still show.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from storage.db import DatabaseUnavailable

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"postmortem-bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "serve":
            settings.require("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
            return asyncio.run(_serve(settings, args.host, args.port))
        if args.command == "run":
            settings.require("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
            return asyncio.run(_run_socket_mode(settings))
        if args.command == "demo":
            from bot.demo import run_demo

            return asyncio.run(run_demo(args.database_url))
        if args.command == "sweep":
            settings.require("SLACK_BOT_TOKEN")
            return asyncio.run(_sweep(settings, args.at))
        if args.command == "migrate":
            return asyncio.run(_migrate(settings))
        if args.command == "export":
            return asyncio.run(_export(settings, args.channel, args.format))
    except (ConfigError, DatabaseUnavailable) as exc:
        # What the operator must fix, in one line: a traceback would bury it.
        print(f"postmortem-bot: {exc}", file=sys.stderr)
        return 2
    return 2


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; installed first, so a stop during start-up is clean."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _sync_in_background(bot: "Bot") -> "asyncio.Task[object]":
    """Reconcile active incidents with Slack after start-up, while events are already served:
    whatever was posted while the bot was down is repaired, without delaying the first ack."""

    async def sync() -> None:
        try:
            reports = await bot.services.reconcile.sync_active()
        except Exception:  # a failed sync must not take the server down; the next start retries
            log.exception("start-up sync failed")
            return
        repaired = sum(r.repaired for r in reports)
        log.info("start-up sync: %d active incident(s) checked, %d repair(s)", len(reports), repaired)

    return asyncio.ensure_future(sync())


async def _serve(settings: Settings, host: str, port: int) -> int:
    from bot.app import Bot, drain_listeners, start_http
    from bot.scheduler import create_scheduler

    stop = _stop_on_signals()
    bot = await Bot.create(settings)
    runner, bound = await start_http(bot, host, port)
    scheduler = create_scheduler(bot.services)
    scheduler.start()
    syncing = _sync_in_background(bot)
    log.info("serving on http://%s:%d (POST /slack/events, GET /healthz)", host, bound)
    try:
        await stop.wait()
    finally:
        syncing.cancel()
        scheduler.shutdown(wait=False)
        # Stop taking requests, then let the acknowledged ones finish before the pool goes.
        await runner.shutdown()
        await drain_listeners()
        await runner.cleanup()
        await bot.close()
    return 0


async def _run_socket_mode(settings: Settings) -> int:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.app import Bot, drain_listeners
    from bot.scheduler import create_scheduler
    from bot.slack import check_app_token

    stop = _stop_on_signals()
    # slack_sdk retries a refused connection every 10 s forever: refuse a wrong token here.
    await check_app_token(settings)
    bot = await Bot.create(settings)
    handler = AsyncSocketModeHandler(bot.app, settings.app_token)
    scheduler = create_scheduler(bot.services)
    try:
        connecting = asyncio.ensure_future(handler.connect_async())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connecting.done():
            connecting.result()
            scheduler.start()
            log.info("connected to Slack in Socket Mode")
            syncing = _sync_in_background(bot)
            await stopping
            syncing.cancel()
        else:
            connecting.cancel()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await handler.close_async()
        await drain_listeners()
        await bot.close()
    return 0


async def _sweep(settings: Settings, at: str | None) -> int:
    from datetime import datetime, timezone

    from bot.app import Bot
    from bot.clock import FixedClock, SystemClock

    if at:
        try:
            instant = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            print(f"postmortem-bot: --at {at!r} is not an ISO 8601 instant (e.g. 2026-11-24T09:30:00Z)", file=sys.stderr)
            return 2
        clock = FixedClock(instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc))
    else:
        clock = SystemClock()
    bot = await Bot.create(settings, clock=clock)
    try:
        report = await bot.services.nudges.sweep(clock.now())
    finally:
        await bot.close()
    for line in report.lines():
        print(line)
    print(f"sweep at {clock.now().isoformat()}: {len(report.sent)} sent, {len(report.recovered)} recovered, "
          f"{len(report.retried)} to retry, {len(report.failed)} undeliverable")
    return 0


async def _migrate(settings: Settings) -> int:
    from storage.db import create_engine, current_revision, migrate

    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        print(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


async def _export(settings: Settings, channel: str, fmt: str) -> int:
    from bot.documents import render
    from bot.postmortems import load_document
    from storage import queries
    from storage.db import create_session_factory, open_existing

    # Read-only: never creates a database where there is none, never migrates one.
    engine = await open_existing(settings.database_url)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            incident = await queries.latest_incident(session, channel)
        if incident is None:
            print(f"postmortem-bot: no incident has been declared in channel {channel}", file=sys.stderr)
            return 1
        data = await load_document(sessions, incident, settings.timeline_emojis)
    finally:
        await engine.dispose()
    sys.stdout.write(render(data, fmt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
