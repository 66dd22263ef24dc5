"""Engines, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, CursorResult, Result, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

log = logging.getLogger("postmortem_bot.storage")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SessionFactory = async_sessionmaker[AsyncSession]

URL_FORMS = "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:5432/database"


class DatabaseUnavailable(Exception):
    """The database cannot be used. The message is one line for the operator: it names the
    database (never its password) and says what to check."""


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `database_url`, with SQLite set up for a concurrent server.

    SQLite: WAL so readers never block the writer, a busy timeout so a second process (a
    `sweep` beside `serve`) waits instead of failing, and `BEGIN IMMEDIATE` so every
    transaction takes the write lock up front. Deferred transactions that read and then
    write fail at once with SQLITE_BUSY when another writer got in between; immediate ones
    queue behind it.

    One pooled connection: every session takes the single write lock anyway, and more
    connections only poll SQLite's busy handler for it, which under a backlog of events
    collapses into 30 s pool timeouts (the redelivery storm showed it). With one, sessions
    wait their turn in the pool's queue, first come first served.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(
            f"the database URL {_mask_unparsed(database_url)!r} is not a URL: check DATABASE_URL; write it as {URL_FORMS}"
        ) from exc
    try:
        if url.get_backend_name() == "sqlite":
            kwargs.setdefault("pool_size", 1)
            kwargs.setdefault("max_overflow", 0)
            engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
            _configure_sqlite(engine)
            return engine
        return create_async_engine(url, pool_pre_ping=True, **kwargs)
    except (NoSuchModuleError, ImportError, InvalidRequestError) as exc:
        # An unknown dialect ("postgres://"), a driver not installed, or one that is not async.
        raise DatabaseUnavailable(
            f"cannot use the database {shown(url)}: this bot has no async driver for {url.drivername!r}; "
            f"check DATABASE_URL and write it as {URL_FORMS}"
        ) from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configuration without an alembic.ini: the scripts ship inside the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent; run at every start-up)."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with connect(engine) as conn:
        async with conn.begin():
            await conn.run_sync(upgrade)
    log.info("database schema at revision %s", await current_revision(engine))


def head_revision() -> str | None:
    """The revision the code's migrations end at."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with connect(engine) as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def open_existing(database_url: str) -> AsyncEngine:
    """An engine on a database that already holds this version's schema, for read-only commands.

    Creates nothing and migrates nothing: a SQLite file that is not there is not made (SQLite would
    create it on connect), and an empty or older schema is reported rather than migrated.
    Raises DatabaseUnavailable with the operator's one line.
    """
    engine = create_engine(database_url)
    try:
        path = sqlite_file(engine.url)
        if path is not None and not path.exists():
            raise DatabaseUnavailable(
                f"no database at {path} ({shown(engine.url)}): check DATABASE_URL; it must name the database "
                "`serve` or `run` uses"
            )
        found, wanted = await current_revision(engine), head_revision()
        if found is None:
            raise DatabaseUnavailable(
                f"the database {shown(engine.url)} holds no postmortem-bot data: check DATABASE_URL "
                "(`postmortem-bot migrate` creates the schema)"
            )
        if found != wanted:
            raise DatabaseUnavailable(
                f"the database {shown(engine.url)} is at revision {found}, this postmortem-bot reads {wanted}: "
                "check that it is the same version as the bot, or run `postmortem-bot migrate` first"
            )
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot be reached."""
    async with connect(engine) as conn:
        await conn.execute(text("SELECT 1"))


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection from `engine`; failing to get one raises DatabaseUnavailable saying why."""
    problem = _sqlite_problem(engine.url)
    if problem:
        raise DatabaseUnavailable(problem)
    try:
        conn = await engine.connect()
    except Exception as exc:
        if engine.url.get_backend_name() == "sqlite":
            # aiosqlite stops its worker thread after a failed open without waiting for it; let
            # it finish while the loop runs, or it dies with "Event loop is closed" at exit.
            await asyncio.sleep(0.05)
        raise DatabaseUnavailable(explain(engine.url, exc)) from exc
    try:
        yield conn
    finally:
        await conn.close()


# --- what the operator reads when the database cannot be used ------------------------------


def shown(url: URL) -> str:
    """The URL with its password masked: all an operator's terminal or log may hold of it."""
    return url.render_as_string(hide_password=True)


def _mask_unparsed(text: str) -> str:
    """A string SQLAlchemy cannot parse, with whatever looks like credentials masked."""
    scheme, sep, rest = text.rpartition("://")
    if "@" not in rest:
        return text
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] if ":" in userinfo else "***"
    return f"{scheme}{sep}{user}:***@{host}"


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names, absolute; None for in-memory and other databases."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(database).expanduser().absolute()


def _sqlite_problem(url: URL) -> str | None:
    """Why SQLite cannot open its file, found before trying: its driver says only "unable to
    open database file", whatever the reason."""
    path = sqlite_file(url)
    if path is None:
        return None
    if not path.parent.is_dir():
        return (
            f"cannot open the SQLite database {path} ({shown(url)}): the directory {path.parent} does not exist; "
            "check DATABASE_URL, or create the directory"
        )
    if path.is_dir():
        return f"cannot open the SQLite database {shown(url)}: {path} is a directory; check DATABASE_URL"
    return None


def explain(url: URL, exc: BaseException) -> str:
    """One line on why connecting to `url` failed, and what to check."""
    name = shown(url)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    detail = _one_line(url, exc)
    if isinstance(exc, socket.gaierror):
        return f"cannot reach the database {name}: the host {url.host!r} is not known ({detail}); check the host in DATABASE_URL"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"cannot reach the database {name}: nothing accepts connections at {where}; "
            "check that PostgreSQL is running there and the host and port in DATABASE_URL"
        )
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return f"cannot reach the database {name}: no answer from {where}; check the host and port in DATABASE_URL and any firewall between"
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate == "3D000":  # invalid_catalog_name
        return (
            f"the database {url.database!r} does not exist on {where} ({name}): check the database name in "
            f"DATABASE_URL, or create it (createdb -h {url.host or 'localhost'} -U {url.username or 'postgres'} {url.database})"
        )
    if sqlstate in ("28000", "28P01"):  # invalid_authorization_specification, invalid_password
        return (
            f"the database {name} refused user {url.username!r} ({detail}); check the user and password in DATABASE_URL"
        )
    if url.get_backend_name() == "sqlite":
        return f"cannot open the SQLite database {name} ({detail}); check DATABASE_URL and that the file is readable and writable"
    if isinstance(exc, OSError):
        return f"cannot reach the database {name} ({detail}); check the host and port in DATABASE_URL"
    return f"cannot use the database {name} ({detail}); check DATABASE_URL and that the database is running"


def _one_line(url: URL, exc: BaseException) -> str:
    """The driver's own words, first line only, without SQLAlchemy's prefix or the password."""
    orig = getattr(exc, "orig", None) or exc
    message = (str(orig).strip().splitlines() or [orig.__class__.__name__])[0]
    if url.password:
        message = message.replace(str(url.password), "***")
    return message


def dialect_name(session: AsyncSession) -> str:
    """ "sqlite" or "postgresql": what the session's engine speaks."""
    return session.get_bind().dialect.name


def rows_affected(result: Result[Any]) -> int:
    """How many rows an INSERT/UPDATE/DELETE touched (a DML result is a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount or 0
