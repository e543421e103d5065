"""Durable state: audit trail, issued cards, feedback, alert-fatigue (SQLAlchemy 2 + Alembic)."""

from cds_service.storage.engine import Store, open_store

__all__ = ["Store", "open_store"]
