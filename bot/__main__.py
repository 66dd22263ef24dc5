"""The `postmortem-bot` command: serve, run, migrate, sweep, export, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC
from typing import TYPE_CHECKING

from bot.config import ENVIRONMENT, ConfigError, Settings

if TYPE_CHECKING:
    from bot.app import Bot

log = logging.getLogger("postmortem_bot")


HELP_WIDTH = 88

# The settings each command refuses to start without; `--help` lists them as required.
REQUIRED_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "serve": ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"),
    "run": ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"),
    "sweep": ("SLACK_BOT_TOKEN",),
}
# ...and the ones each reads when they are set.
OPTIONAL_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "serve": (
        "DATABASE_URL",
        "SLACK_API_URL",
        "LOG_LEVEL",
        "POSTMORTEM_TIMELINE_EMOJI",
        "POSTMORTEM_WORKING_HOURS",
        "POSTMORTEM_TEMPLATES",
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "run": (
        "DATABASE_URL",
        "SLACK_API_URL",
        "LOG_LEVEL",
        "POSTMORTEM_TIMELINE_EMOJI",
        "POSTMORTEM_WORKING_HOURS",
        "POSTMORTEM_TEMPLATES",
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "sweep": (
        "DATABASE_URL",
        "SLACK_API_URL",
        "LOG_LEVEL",
        "POSTMORTEM_TIMELINE_EMOJI",
        "POSTMORTEM_WORKING_HOURS",
        "POSTMORTEM_TEMPLATES",
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "migrate": ("DATABASE_URL", "LOG_LEVEL"),
    "export": ("DATABASE_URL", "LOG_LEVEL", "POSTMORTEM_TIMELINE_EMOJI", "POSTMORTEM_TEMPLATES"),
}


def _environment_help(command: str) -> str:
    required = REQUIRED_ENVIRONMENT.get(command, ())
    names = required + OPTIONAL_ENVIRONMENT.get(command, ())
    width = max(map(len, names)) + 4
    lines = ["environment:"]
    for name in names:
        meaning, default = ENVIRONMENT[name]
        if name in required:
            meaning = f"required: {meaning}"
        elif default is not None:
            meaning = f"{meaning} (default: {default})"
        lines.append(
            textwrap.fill(
                meaning,
                HELP_WIDTH,
                initial_indent=f"  {name:<{width - 2}}",
                subsequent_indent=" " * width,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="postmortem-bot", description="Slack bot for incident post-mortems.")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, description: str) -> argparse.ArgumentParser:
        # Raw, so the environment stays a table; the description is wrapped here instead.
        return sub.add_parser(
            name,
            help=help,
            description=textwrap.fill(description, HELP_WIDTH),
            epilog=_environment_help(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = command(
        "serve",
        "HTTP mode: POST /slack/events, GET /healthz",
        "HTTP mode, for an app created from manifest.http.yml: Slack POSTs slash commands, events and "
        "interactivity to https://<public host>/slack/events, which must reach this server; GET /healthz "
        "answers 200 while the database does. Sweeps the due nudges every minute.",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=3000, help="port to listen on, 0 for any free one (default: %(default)s)"
    )
    command(
        "run",
        "Socket Mode (needs SLACK_APP_TOKEN)",
        "Socket Mode, for an app created from manifest.yml: connects out to Slack over a WebSocket, so "
        "no public URL is needed. Sweeps the due nudges every minute.",
    )
    command("migrate", "apply database migrations and exit", "Bring the database schema up to date and exit.")
    sweep = command(
        "sweep",
        "send the nudges due at an instant, once, and exit",
        "Send the nudges due at an instant, once, print what was sent and exit (serve and run sweep by themselves).",
    )
    sweep.add_argument("--at", help="ISO 8601 instant (default: now); naive times are UTC")
    demo = sub.add_parser("demo", help="play a short incident against the built-in Slack emulator")
    demo.add_argument("--database-url", help="where to keep the demo's data (default: a new SQLite file)")
    export = command(
        "export",
        "print the latest incident's document for a channel",
        "Print the latest incident's document for a channel. Only reads: creates no database and migrates none.",
    )
    export.add_argument("--channel", required=True, help="Slack channel id, e.g. C0123456")
    export.add_argument(
        "--format", choices=("md", "html", "json"), default="md", help="document format (default: %(default)s)"
    )
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
        configure_logging(settings.log_level)
        settings.require(*REQUIRED_ENVIRONMENT.get(args.command, ()))
        if args.command == "serve":
            return asyncio.run(_serve(settings, args.host, args.port))
        if args.command == "run":
            return asyncio.run(_run_socket_mode(settings))
        if args.command == "demo":
            from bot.demo import run_demo

            return asyncio.run(run_demo(args.database_url))
        if args.command == "sweep":
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


def _sync_in_background(bot: Bot) -> asyncio.Task[object]:
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
    from bot.ticker import create_scheduler

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
    from bot.slack import check_app_token
    from bot.ticker import create_scheduler

    stop = _stop_on_signals()
    # slack_sdk retries a refused connection every 10 s forever: refuse a wrong token here.
    await check_app_token(settings)
    bot = await Bot.create(settings)
    handler = AsyncSocketModeHandler(bot.app, settings.app_token)
    scheduler = create_scheduler(bot.services)
    try:
        connecting = asyncio.ensure_future(handler.connect_async())  # type: ignore[no-untyped-call]  # slack_sdk leaves it unannotated
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
        await handler.close_async()  # type: ignore[no-untyped-call]  # slack_sdk leaves it unannotated
        await drain_listeners()
        await bot.close()
    return 0


async def _sweep(settings: Settings, at: str | None) -> int:
    from datetime import datetime

    from bot.app import Bot
    from bot.clock import Clock, FixedClock, SystemClock

    if at:
        try:
            instant = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            print(
                f"postmortem-bot: --at {at!r} is not an ISO 8601 instant (e.g. 2026-11-24T09:30:00Z)", file=sys.stderr
            )
            return 2
        clock: Clock = FixedClock(instant if instant.tzinfo else instant.replace(tzinfo=UTC))
    else:
        clock = SystemClock()
    bot = await Bot.create(settings, clock=clock)
    try:
        report = await bot.services.nudges.sweep(clock.now())
    finally:
        await bot.close()
    for line in report.lines():
        print(line)
    print(
        f"sweep at {clock.now().isoformat()}: {len(report.sent)} sent, {len(report.recovered)} recovered, "
        f"{len(report.retried)} to retry, {len(report.failed)} undeliverable"
    )
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
    from bot.postmortem_document import render
    from bot.postmortems import load_document
    from storage.db import create_session_factory, open_existing
    from storage.incidents import latest_incident

    # Read-only: never creates a database where there is none, never migrates one.
    engine = await open_existing(settings.database_url)
    try:
        sessions = create_session_factory(engine)
        async with sessions() as session:
            incident = await latest_incident(session, channel)
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
