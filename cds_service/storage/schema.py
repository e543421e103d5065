"""Is the database this process talks to at the schema this version of the code was written for?"""

from __future__ import annotations

from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from cds_service.storage.engine import MIGRATIONS
from cds_service.storage.models import Base

VERSION_TABLE = "alembic_version"


@cache
def expected_revision() -> str:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config).get_current_head()


def schema_problem(connection: Connection) -> str | None:
    """None when every table is there and the migration recorded is this code's newest; else what is
    wrong. A connection that fails raises (the database is unreachable, which is another matter)."""
    missing = sorted({VERSION_TABLE, *Base.metadata.tables} - set(inspect(connection).get_table_names()))
    if missing:
        return f"database schema incomplete: no table {', '.join(missing)}"
    revision = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    if revision != expected_revision():
        return f"database schema at migration {str(revision)[:40]}, this version expects {expected_revision()}"
    return None
