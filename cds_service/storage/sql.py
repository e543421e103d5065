"""The dialect-specific statements we need: insert unless the key exists, one row or many (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

DIALECTS = {"sqlite": sqlite, "postgresql": postgresql}


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
