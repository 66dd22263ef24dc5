"""The `postmortem-bot` console script, run as a real process, as operators run it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from slack_emulator import SlackEmulator
from slack_emulator.driver import SlackDriver
from tests.conftest import ALICE, BOB, INCIDENT_CHANNEL, Rig

SCRIPT = str(Path(sys.executable).parent / "postmortem-bot")
GUARD_S = 60  # a hung process fails the test instead of hanging CI


def env(**values: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_") and k != "DATABASE_URL"}
    base.update(values)
    return base


async def run(*args: str, environ: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        SCRIPT, *args, env=environ or env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd
    )
    out, err = await asyncio.wait_for(process.communicate(), GUARD_S)
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    "command, given, missing",
    [
        ("serve", {}, "SLACK_BOT_TOKEN"),
        ("serve", {"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET"),
        ("run", {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "SLACK_APP_TOKEN"),
    ],
)
async def test_missing_settings_stop_start_up_with_one_line_naming_them(command, given, missing, tmp_path):
    code, out, err = await run(command, environ=env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db", **given))
    assert code == 2
    assert err.strip().count("\n") == 0 and missing in err, err
    assert not (tmp_path / "x.db").exists(), "nothing started before the check"


async def test_a_malformed_log_level_stops_start_up_with_one_line(tmp_path):
    environ = env(LOG_LEVEL="loud", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    code, out, err = await run("serve", environ=environ, cwd=tmp_path)
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "LOG_LEVEL" in err and "loud" in err, err
    assert list(tmp_path.iterdir()) == []


async def test_malformed_working_hours_stop_start_up_with_one_line(tmp_path):
    environ = env(POSTMORTEM_WORKING_HOURS="nine to five", SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    code, out, err = await run("sweep", environ=environ, cwd=tmp_path)
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "POSTMORTEM_WORKING_HOURS" in err and "09:00-17:00" in err, err
    assert list(tmp_path.iterdir()) == [], "checked before the database is touched"


async def test_run_with_slack_unreachable_stops_with_one_line(tmp_path):
    port = free_port()  # nothing listens there
    environ = env(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=f"http://127.0.0.1:{port}/api/")
    code, out, err = await run("run", environ=environ, cwd=tmp_path)
    assert code == 2 and out == ""
    # slack_sdk logs its one retry of the connection at INFO first; then the bot's one line.
    last = err.strip().splitlines()[-1]
    assert last.startswith("postmortem-bot: cannot reach Slack") and f"127.0.0.1:{port}" in last, err[-3000:]
    assert "SLACK_API_URL" in last and "Traceback" not in err and "xapp-1" not in err


async def test_a_token_slack_refuses_stops_start_up_with_one_line(emulator: SlackEmulator, tmp_path):
    environ = env(
        SLACK_BOT_TOKEN="xoxb-not-the-right-one",
        SLACK_SIGNING_SECRET="s",
        SLACK_API_URL=emulator.api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/x.db",
    )
    code, _, err = await run("serve", "--port", str(free_port()), environ=environ)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("postmortem-bot: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)"), err
    assert "xoxb-not-the-right-one" not in err


# --- a database that cannot be used ---------------------------------------------------------

PASSWORD = "s3cret-Pa55"  # must never be printed
BAD_DATABASES = {
    # case: (DATABASE_URL ({pg} is the test PostgreSQL's host:port), what the line must say)
    "bad host": (f"postgresql+asyncpg://postgres:{PASSWORD}@no-such-host.invalid/postmortem", "no-such-host.invalid"),
    "refused port": (f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/postmortem", "127.0.0.1:1"),
    "bad scheme": (f"postgres://postgres:{PASSWORD}@127.0.0.1/postmortem", "postgresql+asyncpg://"),
    "not a URL": (f"postgres:{PASSWORD}@127.0.0.1 postmortem", "postgresql+asyncpg://"),
    "unknown driver": (f"postgresql+nosuchdriver://postgres:{PASSWORD}@127.0.0.1/postmortem", "postgresql+asyncpg://"),
    "driver not installed": (
        f"postgresql+psycopg2://postgres:{PASSWORD}@127.0.0.1/postmortem",
        "postgresql+asyncpg://",
    ),
    "sync sqlite driver": ("sqlite:///postmortem.db", "sqlite+aiosqlite://"),
    "sqlite in a missing directory": ("sqlite+aiosqlite:///{tmp}/no/such/dir/postmortem.db", "no/such/dir"),
    "database does not exist": (
        f"postgresql+asyncpg://postgres:{PASSWORD}@{{pg}}/postmortem_no_such_db",
        "postmortem_no_such_db",
    ),
    "wrong user": (f"postgresql+asyncpg://no_such_role:{PASSWORD}@{{pg}}/postgres", "no_such_role"),
}
COMMANDS = {
    "serve": ("serve", "--port", "0"),
    "run": ("run",),
    "migrate": ("migrate",),
    "export": ("export", "--channel", INCIDENT_CHANNEL),
    "sweep": ("sweep", "--at", "2026-03-10T14:00:00Z"),
}
# Every case through migrate and export (export opens the database its own, read-only way);
# serve, run and sweep share Bot.create, so a few cases of each kind suffice there.
DATABASE_FAILURES = [(case, command) for case in sorted(BAD_DATABASES) for command in ("migrate", "export")] + [
    (case, command)
    for case in ("refused port", "bad scheme", "sqlite in a missing directory", "database does not exist")
    for command in ("serve", "run", "sweep")
]


def masked(url: str) -> str:
    """The URL as an operator may see it: SQLAlchemy's rendering with the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: the line may not echo it, only never its password
        return ""


@pytest.mark.parametrize("case, command", DATABASE_FAILURES)
async def test_a_database_that_cannot_be_used_stops_the_command_with_one_line(
    case, command, emulator, tmp_path, request
):
    url, says = BAD_DATABASES[case]
    if "{pg}" in url:
        pg = make_url(request.getfixturevalue("pg_database_url"))  # skips, as everywhere, without PostgreSQL
        url = url.replace("{pg}", f"{pg.host}:{pg.port or 5432}")
    url = url.replace("{tmp}", str(tmp_path))
    environ = env(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET="s",
        SLACK_APP_TOKEN=emulator.app_token,
        SLACK_API_URL=emulator.api_url,
    )
    code, out, err = await run(*COMMANDS[command], environ=environ, cwd=tmp_path)
    assert code == 2, err[-3000:]
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("postmortem-bot: "), err[-3000:]
    assert "Traceback" not in err and PASSWORD not in err
    assert masked(url) in lines[0] and says in lines[0], lines[0]
    assert "check" in lines[0], f"the line says what to check: {lines[0]}"
    assert list(tmp_path.iterdir()) == [], "no database file (or directory) was created"


@pytest.mark.parametrize("database_url", [None, "sqlite+aiosqlite:///{tmp}/elsewhere.db"])
async def test_export_creates_no_database_where_there_is_none(database_url, tmp_path):
    environ = env(DATABASE_URL=database_url.replace("{tmp}", str(tmp_path))) if database_url else env()
    code, out, err = await run("export", "--channel", INCIDENT_CHANNEL, environ=environ, cwd=tmp_path)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    path = tmp_path / ("elsewhere.db" if database_url else "postmortem.db")
    assert len(lines) == 1 and f"no database at {path}" in lines[0], err
    assert list(tmp_path.iterdir()) == [], "a read-only command created a file"


async def test_export_of_a_database_without_the_schema_migrates_nothing(tmp_path):
    (tmp_path / "empty.db").touch()
    environ = env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    code, out, err = await run("export", "--channel", INCIDENT_CHANNEL, environ=environ, cwd=tmp_path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "postmortem-bot migrate" in err, err
    with sqlite3.connect(tmp_path / "empty.db") as db:
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [], "export created tables"


async def test_migrate_reports_the_revision(tmp_path):
    code, out, _ = await run("migrate", environ=env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/m.db"))
    assert code == 0 and "revision 0008" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_serve_answers_health_and_signed_slack_requests_then_stops_on_sigterm(
    emulator: SlackEmulator, database_url
):
    port = free_port()
    environ = env(
        SLACK_BOT_TOKEN=emulator.bot_token,
        SLACK_SIGNING_SECRET="cli-secret",
        SLACK_API_URL=emulator.api_url.rstrip("/"),  # the bot adds the slash slack_sdk needs
        DATABASE_URL=database_url,
    )
    process = await asyncio.create_subprocess_exec(
        SCRIPT,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(GUARD_S * 10):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        health = (response.status, await response.json())
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            assert health == (200, {"ok": True, "database": "ok"})

        async with SlackDriver(emulator, f"http://127.0.0.1:{port}", "cli-secret") as driver:
            delivery = await driver.slash_command(INCIDENT_CHANNEL, ALICE, "start From the CLI --sev 2")
            assert delivery.status == 200
            for _ in range(GUARD_S * 10):
                if emulator.pins(INCIDENT_CHANNEL):
                    break
                await asyncio.sleep(0.1)
            assert emulator.pins(INCIDENT_CHANNEL), "the card was posted and pinned by the served bot"
            forged = await driver.slash_command(INCIDENT_CHANNEL, ALICE, "help")
            assert forged.status == 200
            driver.signing_secret = "wrong"
            assert (await driver.slash_command(INCIDENT_CHANNEL, ALICE, "help")).status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), GUARD_S)
    assert process.returncode == 0, err.decode()[-2000:]
    assert emulator.bot_token not in err.decode() and "cli-secret" not in err.decode()
    assert " INFO apscheduler" not in err.decode(), "the ticker's own chatter stays out of an INFO log"


async def test_healthz_is_503_when_the_database_is_unreachable(rig: Rig):
    from bot.app import start_http
    from storage.db import create_engine

    real_engine = rig.bot.engine
    rig.bot.engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")  # nothing listens on port 1
    runner, port = await start_http(rig.bot, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 503
                assert (await response.json())["database"] == "unreachable"
    finally:
        await runner.cleanup()
        await rig.bot.engine.dispose()
        rig.bot.engine = real_engine


async def test_export_prints_the_draft_as_json_and_markdown(rig: Rig):
    await rig.start_incident("Payments | slow --sev 2")
    msg, _ = await rig.driver.post_message(INCIDENT_CHANNEL, BOB, "p99 at 4s\nacross regions | all")
    await rig.processed((await rig.driver.react(INCIDENT_CHANNEL, msg["ts"], ALICE)).event_id)
    await rig.driver.slash_command(INCIDENT_CHANNEL, ALICE, "note 00:00 noted")
    await rig.responses(1)

    code, out, err = await run(
        "export", "--channel", INCIDENT_CHANNEL, "--format", "json", environ=env(DATABASE_URL=rig.url)
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["title"], doc["severity"], doc["status"], doc["channel"]) == (
        "Payments | slow",
        2,
        "active",
        INCIDENT_CHANNEL,
    )
    assert doc["started_at"].endswith("Z") and doc["resolved_at"] is None and doc["action_items"] == []
    message = next(e for e in doc["timeline"] if e["kind"] == "message")
    assert (message["ts"], message["user"], message["text"]) == (msg["ts"], BOB, "p99 at 4s\nacross regions | all")
    assert message["time"].endswith("Z")
    # The 00:00 note (today, New York time) precedes the declaration made just now.
    assert [e["kind"] for e in doc["timeline"]] == ["note", "lifecycle", "message"]
    times = [e["time"] for e in doc["timeline"]]
    assert times == sorted(times)

    code, out, _ = await run(
        "export", "--channel", INCIDENT_CHANNEL, "--format", "md", environ=env(DATABASE_URL=rig.url)
    )
    assert code == 0
    assert out.startswith("# Post-mortem: Payments | slow")
    assert "p99 at 4s<br>across regions \\| all" in out

    code, _, err = await run("export", "--channel", "CNOPE", environ=env(DATABASE_URL=rig.url))
    assert code == 1 and "no incident" in err


async def test_demo_plays_an_incident_and_prints_the_document(tmp_path):
    code, out, err = await run("demo", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/demo.db")
    assert code == 0, err
    assert "pinned: True" in out
    assert "Deploy 4512 (cache flag flip) went out at 14:00" in out
    assert out.count("| message |") == 3 and "| note |" in out


# --- the operator's log ---------------------------------------------------------------------


@pytest.fixture
def restore_loggers():
    """configure_logging sets library loggers' levels for the process: put them back after."""
    names = ("apscheduler", "alembic")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_ticker_leaves_no_apscheduler_lines_in_an_info_log(rig: Rig, caplog, restore_loggers):
    from apscheduler.events import EVENT_JOB_EXECUTED

    from bot.__main__ import configure_logging
    from bot.ticker import create_scheduler

    configure_logging("INFO")
    caplog.set_level(logging.INFO)
    scheduler = create_scheduler(rig.bot.services)
    ran: list[str] = []
    scheduler.add_listener(lambda event: ran.append(event.job_id), EVENT_JOB_EXECUTED)
    scheduler.start()
    try:
        for job in scheduler.get_jobs():  # a minute is long to wait for two ticks
            scheduler.reschedule_job(job.id, trigger="interval", seconds=0.2)
        for _ in range(GUARD_S * 10):
            if ran.count("sweep_nudges") >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        scheduler.shutdown(wait=False)
    assert ran.count("sweep_nudges") >= 2, "the ticker ticked"
    noise = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith("apscheduler") and r.levelno < logging.WARNING
    ]
    assert noise == []
    # What the bot itself did stays at INFO.
    assert logging.getLogger("postmortem_bot.ticker").isEnabledFor(logging.INFO)


# --- --help ---------------------------------------------------------------------------------


async def test_serve_and_run_help_show_defaults_and_the_environment_each_needs():
    from bot.__main__ import REQUIRED_ENVIRONMENT

    code, serve_help, _ = await run("serve", "--help")
    assert code == 0
    assert "default: 0.0.0.0" in serve_help and "default: 3000" in serve_help
    code, run_help, _ = await run("run", "--help")
    assert code == 0
    helps = {"serve": serve_help, "run": run_help}
    assert REQUIRED_ENVIRONMENT["serve"] == ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    assert REQUIRED_ENVIRONMENT["run"] == ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    for command, text in helps.items():
        lines = text.splitlines()
        for name in REQUIRED_ENVIRONMENT[command]:
            assert any(line.split()[:2] == [name, "required:"] for line in lines if line.strip()), (command, name, text)
        for name in (
            "DATABASE_URL",
            "SLACK_API_URL",
            "LOG_LEVEL",
            "POSTMORTEM_WORKING_HOURS",
            "POSTMORTEM_TIMELINE_EMOJI",
        ):
            assert name in text, (command, name)
        assert "sqlite+aiosqlite:///./postmortem.db" in text and "https://slack.com/api/" in text
    assert "SLACK_APP_TOKEN" not in serve_help and "SLACK_SIGNING_SECRET" not in run_help
    assert "manifest.http.yml" in serve_help and "manifest.yml" in run_help
