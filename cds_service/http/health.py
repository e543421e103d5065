"""Probes for the orchestrator: `/healthz` (the process answers) and `/readyz` (it can do its job).

Readiness is a registry of named checks so each backing service registers its own (the knowledge
tables, Redis, the database). A check returns a short status when ready, raises `Degraded` when the
service still answers hook calls without it (HTTP 200, status "degraded"), and `NotReady` when it
should get no traffic (HTTP 503). Reasons name what is down and no secret. Liveness (`/healthz`) checks
nothing but the process: restarting it would not bring a lost dependency back.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from flask import Blueprint, Response, current_app

from cds_service.compute_turn import waiting
from cds_service.config import Settings
from cds_service.knowledge_tables import KnowledgeError, load_all

ReadinessCheck = Callable[[Settings], str]
READINESS_CHECKS: dict[str, ReadinessCheck] = {}

blueprint = Blueprint("health", __name__)


class NotReady(Exception):
    """The dependency a check looks after cannot serve; the message is shown on /readyz."""


class Degraded(Exception):
    """The dependency is lost but the service answers without it (the message says how)."""


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
        reason = f"Redis unreachable: {type(error).__name__}"
        if settings.replay_cache_when_redis_lost == "refuse-calls":
            raise NotReady(f"{reason}; hook calls are refused until it is back") from None
        raise Degraded(f"{reason}; replay cache and rate limits per worker") from None
    return "ok"


@blueprint.get("/healthz")
def healthz() -> Response:
    return _json({"status": "alive"}, 200)


@blueprint.get("/readyz")
def readyz() -> Response:
    settings = current_app.config["SETTINGS"]
    results: dict[str, str] = {}
    for name, check in READINESS_CHECKS.items():
        try:
            with waiting():  # the database and Redis may not answer before their timeouts
                results[name] = check(settings)
        except NotReady as problem:
            results[name] = f"failing: {problem}"
        except Degraded as problem:
            results[name] = f"degraded: {problem}"
    if any(result.startswith("failing:") for result in results.values()):
        return _json({"status": "not ready", "checks": results}, 503)
    degraded = any(result.startswith("degraded:") for result in results.values())
    return _json({"status": "degraded" if degraded else "ready", "checks": results}, 200)


@readiness_check("database")
def database_reachable(settings: Settings) -> str:
    """The audit trail, feedback and repeat control all need the store, at the schema this code expects;
    without it the service is not ready (hook calls that still reach it are answered: see the docs)."""
    from sqlalchemy.exc import SQLAlchemyError

    from cds_service.storage.schema import schema_problem

    try:
        with current_app.extensions["cytopenia.store"].engine.connect() as connection:
            problem = schema_problem(connection)
            connection.rollback()
    except SQLAlchemyError as error:
        raise NotReady(f"database unreachable: {type(error).__name__}") from None
    if problem:
        raise NotReady(problem)
    return "ok"
