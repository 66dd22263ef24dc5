"""The `postmortem-bot` command: serve, run, migrate, sweep, export, lint, demo."""

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

from bot.config import ENVIRONMENT, TRACKER_ENVIRONMENT, ConfigError, Settings

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
        *TRACKER_ENVIRONMENT,
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "run": (
        "DATABASE_URL",
        "SLACK_API_URL",
        "LOG_LEVEL",
        "POSTMORTEM_TIMELINE_EMOJI",
        "POSTMORTEM_WORKING_HOURS",
        "POSTMORTEM_TEMPLATES",
        *TRACKER_ENVIRONMENT,
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "sweep": (
        "DATABASE_URL",
        "SLACK_API_URL",
        "LOG_LEVEL",
        "POSTMORTEM_TIMELINE_EMOJI",
        "POSTMORTEM_WORKING_HOURS",
        "POSTMORTEM_TEMPLATES",
        *TRACKER_ENVIRONMENT,
        "POSTMORTEM_REVIEW_CHANNEL",
    ),
    "migrate": ("DATABASE_URL", "LOG_LEVEL"),
    "export": ("DATABASE_URL", "LOG_LEVEL", "POSTMORTEM_TIMELINE_EMOJI", "POSTMORTEM_TEMPLATES"),
    "lint": ("DATABASE_URL", "LOG_LEVEL"),
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
    lint = command(
        "lint",
        "check a post-mortem file for blame and vague action items",
        "Check a post-mortem written anywhere (the JSON `export --format json` prints, or the bot's Markdown) "
        "for blaming language, human error as a root cause and vague action items, as the post-mortem form "
        "does. Exit 0 when clean, 1 with warnings, 2 when the input cannot be read. People's names come from "
        "--people, else from the people the bot's database knows (read only; no database, no names); "
        "given names, roles and pronouns count as people either way. Asks nothing of Slack.",
    )
    lint.add_argument("file", metavar="FILE", help="the post-mortem (JSON or Markdown), or - for standard input")
    lint.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people, json for tools (default: %(default)s)",
    )
    lint.add_argument(
        "--people", metavar="NAME,NAME...", help="names of people, comma-separated (instead of the database's)"
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
        if args.command == "lint":
            return asyncio.run(_lint(settings, args.file, args.format, args.people))
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
        # Events stored before a crash come first: the sync then repairs only what Slack never delivered.
        await bot.inbox.caught_up(timeout=30)
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
    bot.start()  # the inbox: events are stored before Socket Mode acknowledges them
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
        ticket_lines = await bot.services.trackers.sync(clock.now())
    finally:
        await bot.close()
    for line in report.lines() + ticket_lines:
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


def _read(path: str) -> str:
    """The file's text (standard input for "-"); OSError or UnicodeDecodeError if it cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8")
    with open(path, encoding="utf-8") as file:
        return file.read()


async def _known_names(settings: Settings) -> list[str]:
    """The names the bot's database keeps; none when there is no database to read.

    Without DATABASE_URL and without the default SQLite file, lint runs on names it can see
    (given names, roles, pronouns); a DATABASE_URL that is set must work (DatabaseUnavailable).
    """
    import os

    from storage.db import create_session_factory, open_existing, sqlite_file
    from storage.directory import known_names

    if not os.environ.get("DATABASE_URL"):
        from sqlalchemy.engine import make_url

        path = sqlite_file(make_url(settings.database_url))
        if path is not None and not path.exists():
            return []
    engine = await open_existing(settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            return await known_names(session)
    finally:
        await engine.dispose()


async def _lint(settings: Settings, path: str, fmt: str, people: str | None) -> int:
    from bot.lint import LintInputError, as_json, as_text, lint, parse

    source = "stdin" if path == "-" else path
    try:
        lintable = parse(_read(path))
    except OSError as exc:
        print(f"postmortem-bot: cannot read {source}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"postmortem-bot: cannot read {source}: not UTF-8 text", file=sys.stderr)
        return 2
    except LintInputError as exc:
        print(f"postmortem-bot: cannot read {source}: {exc}", file=sys.stderr)
        return 2
    names = [name.strip() for name in people.split(",")] if people is not None else await _known_names(settings)
    warnings = lint(lintable, [name for name in names if name])
    sys.stdout.write(as_json(warnings) if fmt == "json" else as_text(warnings, source))
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
