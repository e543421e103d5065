"""Structured JSON log lines: one event per line, request id and hookInstance bound to each.

Only what an operator needs and a security reviewer accepts: never a patient id, name or birth
date, never a token, never a request body. Values come from bounded sources (routes, service ids,
statuses, timings); the caller's X-Request-ID is kept only when it looks like an id.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

import orjson
import structlog

HANDLER_NAME = "cytopenia-json"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


SHARED_PROCESSORS = (
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)


def json_formatter() -> logging.Formatter:
    """One JSON object per line, for structlog events and standard-library records alike."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=list(SHARED_PROCESSORS),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )


def configure_logging(level: str = "INFO") -> None:
    """Route structlog and the standard library (gunicorn, Flask, our modules) to JSON on stderr."""
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def request_id_from(header: str | None) -> str:
    """The caller's id when it is a plain token (so traces join up), otherwise a fresh one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
