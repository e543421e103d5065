"""Probes for the orchestrator: `/healthz` (the process answers) and `/readyz` (it can do its job).

Readiness is a registry of named checks so each backing service registers its own (the knowledge
tables and Redis here; the database where storage is set up). A check returns a short status when
ready and raises `NotReady` with a reason that names no secret when not.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from flask import Blueprint, Response, current_app

from cds_service.config import Settings
from cds_service.knowledge_tables import KnowledgeError, load_all

ReadinessCheck = Callable[[Settings], str]
READINESS_CHECKS: dict[str, ReadinessCheck] = {}

blueprint = Blueprint("health", __name__)


class NotReady(Exception):
    """The dependency a check looks after cannot serve; the message is shown on /readyz."""


def readiness_check(name: str) -> Callable[[ReadinessCheck], ReadinessCheck]:
    def register(check: ReadinessCheck) -> ReadinessCheck:
        READINESS_CHECKS[name] = check
        return check

    return register


def _json(document: dict, status: int) -> Response:
    return Response(orjson.dumps(document), status=status, mimetype="application/json")


@readiness_check("knowledge")
def knowledge_loaded(settings: Settings) -> str:
    """Every knowledge table of every layer read, checked and loaded: a broken data file keeps traffic away."""
    try:
        load_all()
    except KnowledgeError as error:
        raise NotReady(f"knowledge table broken: {error}") from error
    return "ok"


@readiness_check("redis")
def redis_reachable(settings: Settings) -> str:
    if not settings.redis_url:
        return "not configured"
    import redis

    timeout = settings.deadlines.readiness_check_seconds
    try:
        with redis.Redis.from_url(settings.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout) as client:
            client.ping()
    except redis.RedisError as error:
        raise NotReady(f"Redis unreachable: {type(error).__name__}") from None
    return "ok"


@blueprint.get("/healthz")
def healthz() -> Response:
    return _json({"status": "alive"}, 200)


@blueprint.get("/readyz")
def readyz() -> Response:
    settings = current_app.config["SETTINGS"]
    results: dict[str, str] = {}
    ready = True
    for name, check in READINESS_CHECKS.items():
        try:
            results[name] = check(settings)
        except NotReady as problem:
            results[name] = f"failing: {problem}"
            ready = False
    return _json({"status": "ready" if ready else "not ready", "checks": results}, 200 if ready else 503)


@readiness_check("database")
def database_reachable(settings: Settings) -> str:
    """The audit trail, feedback and repeat control all need the store; without it the service is not ready."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with current_app.extensions["cytopenia.store"].engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        raise NotReady(f"database unreachable: {type(error).__name__}") from None
    return "ok"
