"""The database connection: SQLite file (WAL) by default, PostgreSQL (psycopg 3) in production.

The schema is brought to the newest Alembic revision when the store opens (`cytopenia-cds serve`
opens it once in the master process before the workers fork, so workers never race to migrate), or,
with `migrate_on_start = false`, by `cytopenia-cds migrate` alone: the service then only checks that
the schema is current and needs no DDL rights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

MIGRATIONS = "cds_service.storage:migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once across workers; FULL makes a commit survive power loss."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if url.database in (None, "", ":memory:"):
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine) -> None:
    """Apply pending migrations (a no-op at head); PostgreSQL replicas serialise on an advisory lock."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """The engine for this process: a forked worker gets its own connections, never its parent's."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self._engine = make_engine(database_url)
        self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        if self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine


class SchemaNotCurrent(Exception):
    """The database is behind this release's schema and the service may not migrate it itself."""


def _script_directory() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config)


def require_current(engine: Engine) -> None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current != set(_script_directory().get_heads()):
        raise SchemaNotCurrent("the database schema is not current: run `cytopenia-cds migrate` first")


def open_store(database_url: str, *, migrate: bool = True) -> Store:
    store = Store(database_url)
    if migrate:
        upgrade(store.engine)
    else:
        require_current(store.engine)
    return store
