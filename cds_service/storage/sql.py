"""The dialect-specific statements we need (SQLite and PostgreSQL): insert unless the key exists, one row or
many; and the hook call's own statements, written once per dialect and run with `execute`.

A hook call runs a handful of statements in its transaction. Through SQLAlchemy Core each costs a
compiled-cache lookup and per-parameter processing of about 50 µs of Python; the same text run with
`exec_driver_sql` costs about 15 µs, and straight on the driver's cursor (`execute` on SQLite) about
5 µs, still with SQLAlchemy's error handling (the driver's error raised as SQLAlchemy raises it, a
dropped connection recognised and invalidated). Values are converted by the columns' own types
(`bound`), so what is stored is exactly what Core would store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Column, Connection, Dialect, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, StatementError

DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}
Convert = Callable[[Any], Any]
Statement = tuple[str, dict[str, Any] | None]
_UNSENT: ContextVar[tuple[Any, list[Statement]] | None] = ContextVar("unsent_statements", default=None)


def insert_unless_present(connection: Connection, table: Table, values: dict[str, Any]) -> bool:
    """True if the row was inserted; False if a row with the same unique key was already there."""
    dialect = DIALECTS[connection.dialect.name]
    key = next(iter(table.primary_key.columns))
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing().returning(key)
    return connection.execute(statement).first() is not None  # rowcount is not reliable here on psycopg


def insert_new(connection: Connection, table: Table, rows: list[dict[str, Any]], key: Column) -> set[Any]:
    """Insert all `rows` in one statement, skipping those whose unique key exists; the keys inserted."""
    if not rows:
        return set()
    dialect = DIALECTS[connection.dialect.name]
    statement = dialect.insert(table).values(rows).on_conflict_do_nothing().returning(key)
    return set(connection.execute(statement).scalars())


def parameter(dialect: str, name: str) -> str:
    """A named parameter in the driver's own style: sqlite3 `:name`, psycopg `%(name)s`."""
    return f":{name}" if dialect == "sqlite" else f"%({name})s"


def values_rows(
    dialect: str, table: str, columns: Sequence[str], count: int, fixed: dict[str, str] | None = None
) -> str:
    """`(...), (...)`: `count` rows of named parameters `<table>_<column>_<row>` (unique when one statement
    writes several tables); a column in `fixed` takes that SQL instead."""
    fixed = fixed or {}
    return ", ".join(
        "(" + ", ".join(fixed.get(c) or parameter(dialect, f"{table}_{c}_{i}") for c in columns) + ")"
        for i in range(count)
    )


def row_parameters(table: str, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> dict[str, Any]:
    """The parameters of `values_rows` for these rows (already `bound`)."""
    return {f"{table}_{c}_{i}": row[c] for i, row in enumerate(rows) for c in columns if c in row}


_WRITERS: dict[tuple[str, str], dict[str, Convert]] = {}
_READERS: dict[tuple[str, str], dict[str, Convert]] = {}


def _writers(table: Table, dialect: Dialect) -> dict[str, Convert]:
    key = (table.name, dialect.name)
    if key not in _WRITERS:
        found = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns}
        _WRITERS[key] = {name: convert for name, convert in found.items() if convert is not None}
    return _WRITERS[key]


def bound(connection: Connection, table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """`row` as the driver must receive it for `table` (times as UTC text on SQLite, JSON serialised, ...)."""
    writers = _writers(table, connection.dialect)
    return {name: writers[name](value) if name in writers else value for name, value in row.items()}


def reader(connection: Connection, table: Table, column: str) -> Convert:
    """How a value of `table.column` comes back from the driver into Python, as Core would return it."""
    key = (table.name, connection.dialect.name)
    if key not in _READERS:
        dialect = connection.dialect
        found = {c.name: c.type.dialect_impl(dialect).result_processor(dialect, None) for c in table.columns}
        _READERS[key] = {name: read for name, read in found.items() if read is not None}
    return _READERS[key].get(column, _same)


def _same(value: Any) -> Any:
    return value


@contextmanager
def sent_with_the_next(connection: Connection, begin: str) -> Iterator[None]:
    """PostgreSQL, the driver in autocommit mode: a transaction whose statements that need no answer (its
    `begin`, then `write_last`) wait to go to the server with the next that does (`pipelined`, `send_unsent`),
    in one round trip. psycopg alone sends BEGIN by itself and waits for it, and a write before COMMIT."""
    token = _UNSENT.set((connection.connection.driver_connection, [(begin, None)]))
    try:
        yield
    finally:
        _UNSENT.reset(token)


def _take_unsent(connection: Connection) -> list[Statement]:
    held = _UNSENT.get()
    if held is None or held[0] is not connection.connection.driver_connection or not held[1]:
        return []
    unsent = list(held[1])
    held[1].clear()
    return unsent


def write_last(connection: Connection, statement: str, parameters: dict[str, Any]) -> None:
    """A write whose answer nobody reads: in a `sent_with_the_next` transaction it goes with the COMMIT,
    otherwise at once (`exec_driver_sql`)."""
    held = _UNSENT.get()
    if held is not None and held[0] is connection.connection.driver_connection:
        held[1].append((statement, parameters))
        return
    connection.exec_driver_sql(statement, parameters)


def send_unsent(connection: Connection, last: Statement | None = None) -> None:
    """Send what a `sent_with_the_next` transaction holds back (and `last` after it), in one round trip.
    Run also before any statement SQLAlchemy executes (see `storage.engine`), so none runs before BEGIN."""
    statements = _take_unsent(connection) + ([last] if last else [])
    if statements:
        _run_pipelined(connection, statements)


def pipelined(connection: Connection, statements: Sequence[Statement]) -> list[tuple[Any, ...]]:
    """PostgreSQL (psycopg pipeline mode): run `statements` one after another in one round trip (after
    what a `sent_with_the_next` transaction held back, its BEGIN included); the rows of the last. Each
    statement still takes its own snapshot. A driver error is raised as SQLAlchemy raises it."""
    return _run_pipelined(connection, [*_take_unsent(connection), *statements])


def _run_pipelined(connection: Connection, statements: Sequence[Statement]) -> list[tuple[Any, ...]]:
    driver = connection.connection.driver_connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with driver.pipeline():  # type: ignore[union-attr]  # psycopg 3: the only PostgreSQL driver we use
            cursors = [driver.execute(statement, parameters) for statement, parameters in statements]  # type: ignore[union-attr]
        return list(cursors[-1].fetchall()) if cursors[-1].description is not None else []
    except dbapi_error as error:
        statement, parameters = statements[-1]
        raise _as_sqlalchemy_raises(connection, statement, parameters or {}, error) from error


def execute(connection: Connection, statement: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement written in the driver's parameter style; its rows (none for a statement that
    returns none). SQLite: on the driver's cursor, without SQLAlchemy's execution context and result."""
    if connection.dialect.name != "sqlite":
        result = connection.exec_driver_sql(statement, parameters)
        return [tuple(row) for row in result] if result.returns_rows else []
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]  # sqlite3: always set
    try:
        cursor.execute(statement, parameters)
        return cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_raises(connection, statement, parameters, error) from error
    finally:
        cursor.close()


def _as_sqlalchemy_raises(
    connection: Connection, statement: str, parameters: dict[str, Any], error: Any
) -> StatementError:
    """The driver's error as SQLAlchemy raises it (values hidden); a dropped connection is invalidated, so
    `in_transaction` runs the transaction once more on a fresh one."""
    dropped = connection.dialect.is_disconnect(error, connection.connection.dbapi_connection, None)
    if dropped:
        connection.invalidate(error)
    return DBAPIError.instance(
        statement,
        parameters,
        error,
        connection.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=dropped,
        dialect=connection.dialect,
    )
