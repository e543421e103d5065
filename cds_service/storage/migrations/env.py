"""Alembic environment: runs on the connection `cds_service.storage.engine.upgrade` hands it."""

from alembic import context

from cds_service.storage.models import Base

MIGRATION_LOCK = 727_001  # pg_advisory_xact_lock key: one replica migrates at a time

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.run_migrations()
