"""The packaged Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cds_service.storage import open_store
from cds_service.storage.models import Base


def test_migrations_match_the_models_and_rerun_as_a_no_op(database_url):
    store = open_store(database_url)
    open_store(database_url).engine.dispose()  # a second start-up finds the schema current
    try:
        with store.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        store.engine.dispose()
