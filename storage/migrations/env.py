"""Alembic environment: runs on the connection handed over by storage.db.migrate."""

from alembic import context

from storage.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `postmortem-bot migrate` (storage.db.migrate), not the alembic CLI")

context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
