"""Gunicorn's own lines (master start, workers booting and exiting, signals) as JSON, like the service's.

Gunicorn gives its loggers plain-text handlers of their own; this `logconfig_dict` replaces them with
the service's JSON handler on the root logger. Its access log stays off: the app writes one JSON line
per request itself (cds_service/observability/requests.py).
"""

from __future__ import annotations

from typing import Any

from cds_service.observability.logs import HANDLER_NAME


def logconfig_dict(level: str = "INFO") -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "cds_service.observability.logs.json_formatter"}},
        # Named like configure_logging's handler, so a later call replaces it instead of doubling every line.
        "handlers": {
            HANDLER_NAME: {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level, "handlers": [HANDLER_NAME]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }
