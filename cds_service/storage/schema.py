"""Is the database this process talks to at the schema this version of the code was written for?"""

from __future__ import annotations

from functools import cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from cds_service.storage.engine import MIGRATIONS
from cds_service.storage.models import Base


@cache
def expected_revision() -> str:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return ScriptDirectory.from_config(config).get_current_head()


def schema_problem(connection: Connection) -> str | None:
    """None when the migration recorded is this code's newest and every table is there; else what is wrong.
    A missing table raises on the database side, which the caller's transaction must not keep."""
    try:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        for table in Base.metadata.sorted_tables:
            connection.execute(select(table).limit(0))
    except (ProgrammingError, OperationalError) as error:
        return f"database schema incomplete ({type(error.orig).__name__})"
    if revision != expected_revision():
        return f"database schema at migration {str(revision)[:40]}, this version expects {expected_revision()}"
    return None
