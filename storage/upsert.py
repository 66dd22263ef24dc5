"""The dialect's INSERT, for the idempotent writes (ON CONFLICT) every storage module uses.

SQLite and PostgreSQL spell ON CONFLICT alike, but SQLAlchemy gives it only on each
dialect's own `insert`, so the statement is built for the session's dialect.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_name


def on_conflict_insert(session: AsyncSession, model: Any) -> Any:
    """An INSERT into `model` (a mapped class or a table) that has `on_conflict_do_*`."""
    return on_conflict_insert_for(dialect_name(session), model)


def on_conflict_insert_for(dialect: str, model: Any) -> Any:
    """The same for a dialect named ahead of any session: for statements built once and cached."""
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise RuntimeError(f"unsupported database dialect {dialect!r}: use SQLite or PostgreSQL")
