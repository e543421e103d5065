"""The database connection: SQLite file (WAL) by default, PostgreSQL (psycopg 3) in production.

The schema is brought to the newest Alembic revision when the store opens (`cytopenia-cds serve`
opens it once in the master process before the workers fork, so workers never race to migrate), or,
with `migrate_on_start = false`, by `cytopenia-cds migrate` alone: the service then only checks that
the schema is current and needs no DDL rights.

A hook call checks out one connection and runs one transaction (`in_transaction`). Connections are
not pinged on checkout (a round trip per request); they are recycled after `RECYCLE_SECONDS`, and a
transaction that meets a connection the server has dropped is run once more on a fresh one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

MIGRATIONS = "cds_service.storage:migrations"
RECYCLE_SECONDS = 1800  # below common idle-connection cut-offs of proxies and managed PostgreSQL
T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once across workers; FULL makes a commit survive power loss."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(database_url: str, pool_size: int = 5) -> Engine:
    """`pool_size`: requests one process serves at once, each holding one connection for its transaction."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=pool_size, max_overflow=0, pool_recycle=RECYCLE_SECONDS)
    if url.database in (None, "", ":memory:"):
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run `work` in one transaction on one connection, committed before this returns. Run once more if
    the connection turns out to be dead (a database restart since it was pooled), never for other errors."""
    try:
        return _run(engine, work)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return _run(engine, work)


def _run(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as connection, connection.begin():
        if connection.dialect.name == "sqlite":
            # The write lock first: two workers reading the same state cannot then both write it; the
            # later one waits its turn instead of failing to upgrade its read lock.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        return work(connection)


def upgrade(engine: Engine) -> None:
    """Apply pending migrations (a no-op at head); PostgreSQL replicas serialise on an advisory lock."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    """The engine for this process: a forked worker gets its own connections, never its parent's."""

    def __init__(self, database_url: str, pool_size: int = 5):
        self.database_url = database_url
        self._engine = make_engine(database_url, pool_size)
        self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        if self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    def size_pool(self, requests_at_once: int) -> None:
        """Size the connection pool to the worker model (gunicorn threads per worker), before workers fork."""
        self._engine.dispose()
        self._engine = make_engine(self.database_url, max(1, requests_at_once))


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
