"""Is the database this process talks to at the schema this version of the code was written for?"""

from __future__ import annotations

from functools import cache

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from cds_service.storage.engine import _script_directory
from cds_service.storage.models import Base

VERSION_TABLE = "alembic_version"


@cache
def expected_revisions() -> frozenset[str]:
    return frozenset(_script_directory().get_heads())


def schema_problem(connection: Connection) -> str | None:
    """None when every table is there and the migration recorded is this code's newest; else what is
    wrong. A connection that fails raises (the database is unreachable, which is another matter)."""
    missing = sorted({VERSION_TABLE, *Base.metadata.tables} - set(inspect(connection).get_table_names()))
    if missing:
        return f"database schema incomplete: no table {', '.join(missing)}"
    recorded = frozenset(MigrationContext.configure(connection).get_current_heads())
    if recorded != expected_revisions():
        return (
            f"database schema at migration {', '.join(sorted(recorded))[:40] or 'none'}, "
            f"this version expects {', '.join(sorted(expected_revisions()))}"
        )
    return None
