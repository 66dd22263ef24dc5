"""The Alembic migrations and the models describe the same schema, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import create_engine, migrate
from storage.models import Base


async def test_migrations_match_models_and_rerun_cleanly(database_url):
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)  # start-up runs it every time

        def diff(connection):
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
