"""cytopenia-cds: a CDS Hooks 2.0 service for cytopenias and febrile neutropenia."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(*args: Any, **kwargs: Any) -> Flask:
    """App factory (imported lazily so the clinical core can be used without Flask)."""
    from cds_service.app import create_app as factory

    return factory(*args, **kwargs)


__all__ = ["create_app"]
