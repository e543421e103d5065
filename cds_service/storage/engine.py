"""The database connection: SQLite file (WAL) by default, PostgreSQL (psycopg 3) in production.

The schema is brought to the newest Alembic revision when the store opens (`cytopenia-cds serve`
opens it once in the master process before the workers fork, so workers never race to migrate), or,
with `migrate_on_start = false`, by `cytopenia-cds migrate` alone: the service then only checks that
the schema is current and needs no DDL rights.

A hook call checks out one connection and runs one transaction (`in_transaction`); on PostgreSQL its
BEGIN and COMMIT travel with its statements, two round trips in all (`_hook_call_on_postgresql`).
Connections are not pinged on checkout (a round trip per request); they are recycled after
`RECYCLE_SECONDS`, and a
transaction that meets a connection the server has dropped is run once more on a fresh one. A
PostgreSQL connection checked out for longer than `deadlines.database_seconds` is cut (`Watchdog`), and
connecting gives up after as long: a database that stops answering costs a call seconds, not TCP's
minutes, and the call is answered without it.

On a SQLite file the hook calls of one process share their commits (`GroupCommit`): each commit waits
for an fsync and holds the database's one write lock meanwhile, so calls that arrive during a commit
queue, and the next of them runs all queued calls' work in one transaction and one fsync. Each call
is still answered only once the commit holding its work has succeeded.
"""

from __future__ import annotations

import contextvars
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from cds_service.compute_turn import waiting
from cds_service.storage.sql import execute, send_unsent, sent_with_the_next

MIGRATIONS = "cds_service.storage:migrations"
RECYCLE_SECONDS = 1800  # below common idle-connection cut-offs of proxies and managed PostgreSQL
RETRY_DATABASE_AFTER_SECONDS = 5  # after the database is lost, this process's calls skip it this long
SQLITE_BUSY_SECONDS = 30  # the longest a SQLite statement waits for a lock another process holds
# Between tries for SQLite's write lock: 0.2 ms for the first 10 ms (another worker's commit takes about
# a millisecond), then each pause twice the last, at most 5 ms (a lock held for seconds, by a backup or a
# long report, then costs a few hundred tries, not thousands).
LOCK_POLL_SECONDS = 0.0002
LOCK_POLL_FAST_FOR_SECONDS = 0.01
LOCK_POLL_LONGEST_SECONDS = 0.005
T = TypeVar("T")
Transaction = Callable[[Connection, Callable[[Connection], T]], T]  # how `work` runs on a checked-out connection


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers and one writer work at once across workers; FULL makes a commit survive power loss."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Watchdog:
    """Cuts PostgreSQL connections held past their deadline, so that the thread waiting on one gets an
    error instead of waiting for TCP to give up on a database that accepts bytes and never answers.

    One thread per process looks every `TICK_SECONDS`. Each checked-out connection is watched through a
    duplicate of its socket, so a connection closed meanwhile can never make the watchdog cut another
    socket that reused its file number. A cut connection fails its statement; the pool then drops it.
    """

    TICK_SECONDS = 0.1

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, socket.socket]] = {}
        self._pid: int | None = None

    def watch(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if self._pid != os.getpid():  # the first checkout in this (possibly forked) process
            self._pid = os.getpid()
            self._lock, self._watched = threading.Lock(), {}  # never a lock held by the parent's thread at fork
            threading.Thread(target=self._run, name="database-watchdog", daemon=True).start()
        try:
            duplicate = socket.socket(fileno=os.dup(dbapi_connection.fileno()))
        except Exception:  # already closed: its first statement fails and the pool replaces it
            return
        with self._lock:
            self._watched[id(dbapi_connection)] = (time.monotonic() + self.seconds, duplicate)

    def release(self, dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            watched = self._watched.pop(id(dbapi_connection), None)
        if watched is not None:
            watched[1].close()

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [key for key, (deadline, _) in self._watched.items() if deadline <= now]
                for key in late:
                    _, duplicate = self._watched.pop(key)
                    try:
                        duplicate.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    duplicate.close()


def _json_text(value: Any) -> str:
    """JSON columns are written by orjson: a 500-resource chart's audit row lists every resource it was sent,
    which the standard library took 54 us to write and orjson 3 us."""
    return orjson.dumps(value).decode()


JSON_CODEC = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(database_url: str, pool_size: int = 5, deadline_seconds: float | None = None) -> Engine:
    """`pool_size`: requests one process serves at once, each holding one connection for its transaction.
    `deadline_seconds`: on PostgreSQL, the longest a connection is held or a connect waits (the service's
    own engine; the command-line tools, whose reports and migrations may take longer, pass none).
    A database error's message never carries the statement's values (hashed patient keys, card text,
    user ids): it is logged with its traceback."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # libpq waits at least 2 s to connect, whatever it is told
        connect_args = {} if deadline_seconds is None else {"connect_timeout": max(2, math.ceil(deadline_seconds))}
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_recycle=RECYCLE_SECONDS,
            hide_parameters=True,
            connect_args=connect_args,
            **JSON_CODEC,
        )
        if deadline_seconds is not None:
            watchdog = Watchdog(deadline_seconds)
            event.listen(engine, "checkout", watchdog.watch)
            event.listen(engine, "checkin", watchdog.release)
        event.listen(engine, "before_cursor_execute", _unsent_first)
        return engine
    if url.database in (None, "", ":memory:"):
        return create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}, hide_parameters=True, **JSON_CODEC
        )
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, hide_parameters=True, **JSON_CODEC)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _unsent_first(connection: Connection, *_: Any) -> None:
    """A statement run through SQLAlchemy in a hook call's transaction goes after its BEGIN, never before."""
    send_unsent(connection)


def in_transaction(engine: Engine, work: Callable[[Connection], T], transaction: Transaction[T] | None = None) -> T:
    """Run `work` in one transaction on one connection, committed before this returns. Run once more if
    the connection turns out to be dead (a database restart since it was pooled), never for other errors."""
    transaction = transaction or _transaction
    try:
        return _run(engine, work, transaction)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
    return _run(engine, work, transaction)


def _run(engine: Engine, work: Callable[[Connection], T], transaction: Transaction[T]) -> T:
    with engine.connect() as connection:
        return transaction(connection, work)


def _transaction(connection: Connection, work: Callable[[Connection], T]) -> T:
    """The statements run in this call's compute turn (each is short; handing the turn on at each would
    queue this call behind another's computing as often); the commit, which waits for the disk, hands it on."""
    transaction = connection.begin()
    try:
        if connection.dialect.name == "sqlite":
            # The write lock first: two workers reading the same state cannot then both write it; the
            # later one waits its turn instead of failing to upgrade its read lock.
            _sqlite_write_lock(connection)
        result = work(connection)
        with waiting():
            transaction.commit()
    except BaseException:
        transaction.rollback()  # on any error, the commit's own included
        raise
    return result


def _sqlite_write_lock(connection: Connection) -> None:
    """BEGIN IMMEDIATE, at once when the write lock is free. When another process holds it (most often
    while its commit waits for the disk, under a millisecond), this call hands its compute turn on and
    tries again every 0.2 ms, after 10 ms less and less often, at most every 5 ms (`LOCK_POLL_...`), for
    at most `SQLITE_BUSY_SECONDS`. SQLite's own busy handler would sleep 1, 2, 5, 10 ms ... and holding the turn
    through those sleeps idled the whole worker: at 4 connections the 2 workers used 1.35 of 2 CPUs."""
    execute(connection, "PRAGMA busy_timeout = 0", {})
    try:
        if _began_immediate(connection):
            return
        started = time.monotonic()
        deadline, slow_down = started + SQLITE_BUSY_SECONDS, started + LOCK_POLL_FAST_FOR_SECONDS
        pause = LOCK_POLL_SECONDS
        with waiting():
            while True:
                time.sleep(pause)
                now = time.monotonic()
                if _began_immediate(connection, give_up=now >= deadline):
                    return
                if now >= slow_down:
                    pause = min(2 * pause, LOCK_POLL_LONGEST_SECONDS)
    finally:
        execute(connection, f"PRAGMA busy_timeout = {int(SQLITE_BUSY_SECONDS * 1000)}", {})


def _began_immediate(connection: Connection, give_up: bool = False) -> bool:
    """False when another connection holds the write lock (unless giving up: then its error is raised)."""
    try:
        execute(connection, "BEGIN IMMEDIATE", {})
    except OperationalError as error:
        if give_up or getattr(error.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
            raise
        return False
    return True


def _hook_call_on_postgresql(connection: Connection, work: Callable[[Connection], T]) -> T:
    """A PostgreSQL hook call's transaction in two round trips where psycopg alone takes four: BEGIN goes
    with the patient's lock and the read of their alert state (`alert_state.screen`), the audit write
    (`audit.record_call`) with COMMIT (`sql.sent_with_the_next`). Served at one connection each round trip
    cost 0.3-0.8 ms, more than the statement. The commit still ends before the call is answered."""
    connection.execution_options(isolation_level="AUTOCOMMIT")  # BEGIN and COMMIT are sent here; reset at checkin
    try:
        with sent_with_the_next(connection, "BEGIN"):
            result = work(connection)
            with waiting():
                send_unsent(connection, ("COMMIT", None))
    except BaseException:
        _roll_back(connection)
        raise
    return result


def _roll_back(connection: Connection) -> None:
    """End a transaction begun by hand (a no-op if it never began); a connection that cannot is dropped."""
    if connection.invalidated:
        return
    try:
        connection.connection.driver_connection.rollback()  # type: ignore[union-attr]  # psycopg: always set
    except connection.dialect.loaded_dbapi.Error as error:
        connection.invalidate(error)


class _Queued(Generic[T]):
    """One call's work waiting for a commit, with the context (Flask request, log fields) it came from."""

    def __init__(self, work: Callable[[Connection], T]):
        self.work = work
        self.context = contextvars.copy_context()
        self.turn = threading.Event()
        self.leads = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, connection: Connection) -> None:
        self.result, self.error = None, None
        self.result = self.context.run(self.work, connection)

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by run() when no error was recorded


class GroupCommit:
    """The hook calls of one process share their transaction and its commit (SQLite: one fsync each).

    A call queues its work; if no call is leading, it leads: it takes every queued work, runs each in
    turn in one transaction (each in a savepoint of its own when there are several, so one failing
    rolls back only itself), commits, and only then wakes the calls it ran. Calls that queued meanwhile
    are the next batch, led by the first of them. Work runs in its own call's context (`flask.g`,
    request, log fields), one after another under the database's write lock: a later call in a batch
    sees the alert state an earlier one wrote, as it would after that one's commit. If the commit fails
    every call of the batch gets the error (its cards are shown and its audit row is retried alone).

    Only one leader runs at a time, so the leaders keep one connection between batches rather than take
    it from the pool and give it back (with the pool's rollback) for every batch; it is let go after
    any error, and the next batch opens a fresh one.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queued: list[_Queued[Any]] = []
        self._leading = False
        self._connection: Connection | None = None

    def run(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        call = _Queued(work)
        with self._mutex:
            self._queued.append(call)
            follows, self._leading = self._leading, True
        if follows:
            with waiting():  # for the leader, who needs the turn to finish
                call.turn.wait()
            if not call.leads:
                return call.outcome()
        self._lead(engine)
        return call.outcome()

    def _lead(self, engine: Engine) -> None:
        with self._mutex:
            batch, self._queued = self._queued, []
        try:
            self._in_transaction(engine, lambda connection: _run_batch(connection, batch))
        except BaseException as error:  # the transaction as a whole failed: nothing of the batch is stored
            for call in batch:
                call.error = error
        finally:
            with self._mutex:
                successor = self._queued[0] if self._queued else None
                self._leading = successor is not None
            for call in batch:
                call.turn.set()
            if successor is not None:
                successor.leads = True
                successor.turn.set()

    def _in_transaction(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        """`in_transaction` on the kept connection: once more on a fresh one if it turns out to be dead."""
        try:
            return self._on_kept(engine, work)
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
        return self._on_kept(engine, work)

    def _on_kept(self, engine: Engine, work: Callable[[Connection], T]) -> T:
        connection = self._connection
        if connection is None or connection.engine is not engine or connection.closed or connection.invalidated:
            if connection is not None:
                connection.close()
            connection = self._connection = engine.connect()
        try:
            return _transaction(connection, work)
        except BaseException:
            self._connection = None
            connection.close()
            raise


def _run_batch(connection: Connection, batch: list[_Queued[Any]]) -> None:
    if len(batch) == 1:
        batch[0].run(connection)
        return
    for call in batch:
        connection.exec_driver_sql("SAVEPOINT hook_call")
        try:
            call.run(connection)
        except Exception as error:
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hook_call")
            call.error = error
        connection.exec_driver_sql("RELEASE SAVEPOINT hook_call")


def upgrade(engine: Engine) -> None:
    """Apply pending migrations (a no-op at head); PostgreSQL replicas serialise on an advisory lock."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class DatabaseLost(SQLAlchemyError):
    """The database failed a moment ago; this call does not wait for it again (see `Store.transaction`)."""


class Store:
    """The engine for this process: a forked worker gets its own connections, never its parent's.

    When a hook call's transaction fails for want of the database (it refused, dropped or did not
    answer a connection), the process's calls skip it for `RETRY_DATABASE_AFTER_SECONDS`, as they do
    a lost Redis: each would otherwise pay the deadline again before being answered without it.
    `/readyz` always asks the database itself.
    """

    def __init__(self, database_url: str, pool_size: int = 5, deadline_seconds: float | None = None):
        self.database_url = database_url
        self.deadline_seconds = deadline_seconds
        self._engine = make_engine(database_url, pool_size, deadline_seconds)
        self._pid = os.getpid()
        self._group_commit = GroupCommit() if self._engine.dialect.name == "sqlite" else None
        self._lost_until = 0.0

    @property
    def engine(self) -> Engine:
        if self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._pid = os.getpid()
            if self._group_commit is not None:
                self._group_commit = GroupCommit()
        return self._engine

    def hook_call_transaction(self, work: Callable[[Connection], T]) -> T:
        """A hook call's transaction: on SQLite sharing its commit with the calls queued meanwhile, on
        PostgreSQL in two round trips (`_hook_call_on_postgresql`)."""
        engine = self.engine
        if self._group_commit is None:
            return self.transaction(work, _hook_call_on_postgresql)
        return self._group_commit.run(engine, work)

    def transaction(self, work: Callable[[Connection], T], transaction: Transaction[T] | None = None) -> T:
        """`in_transaction`, skipped at once while the database is lost."""
        if time.monotonic() < self._lost_until:
            raise DatabaseLost("the database failed moments ago; not asked again yet")
        try:
            return in_transaction(self.engine, work, transaction)
        except OperationalError:
            self._lost_until = time.monotonic() + RETRY_DATABASE_AFTER_SECONDS
            raise

    def size_pool(self, requests_at_once: int) -> None:
        """Size the connection pool to the worker model (gunicorn threads per worker), before workers fork."""
        self._engine.dispose()
        self._engine = make_engine(self.database_url, max(1, requests_at_once), self.deadline_seconds)


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


def open_store(database_url: str, *, migrate: bool = True, deadline_seconds: float | None = None) -> Store:
    store = Store(database_url, deadline_seconds=deadline_seconds)
    if migrate and deadline_seconds is not None and store.engine.dialect.name != "sqlite":
        unwatched = make_engine(database_url)  # a migration may rightly take longer than a call
        try:
            upgrade(unwatched)
        finally:
            unwatched.dispose()
    elif migrate:
        upgrade(store.engine)
    else:
        require_current(store.engine)
    return store
