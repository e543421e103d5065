"""The Flask app factory: configuration in, a ready WSGI app out."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

from flask import Flask, Response

from cds_service import hooks
from cds_service.clinical.knowledge import site_thresholds
from cds_service.compute_turn import taking_turns
from cds_service.config import ConfigError, Settings, load_settings
from cds_service.config_report import changed_thresholds
from cds_service.data_access.gather import FhirAccess
from cds_service.errors import register_error_handlers
from cds_service.hooks.service import CdsService
from cds_service.http import health, metrics, openapi, smart_app
from cds_service.http.cors import install_cors
from cds_service.http.guard import install_guard
from cds_service.http.routes import blueprint
from cds_service.knowledge_tables import load_all
from cds_service.observability.logs import configure_logging, get_logger
from cds_service.observability.requests import install_request_observability
from cds_service.preflight import require_startable
from cds_service.storage import open_store
from cds_service.storage.engine import SchemaNotCurrent
from cds_service.storage.patient_key import audit_secret

log = logging.getLogger("cds_service")

DEV_WARNING = (
    "DEVELOPMENT MODE: unauthenticated CDS Hooks calls are accepted and the public CDS Hooks Sandbox "
    "is trusted. Never expose this server to real patient data."
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

HSTS = "max-age=31536000; includeSubDomains"  # outside dev the service is only reachable over https


def utc_now() -> datetime:
    return datetime.now(UTC)


def _fixed(moment: datetime) -> datetime:
    return moment


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    services: Sequence[CdsService] = hooks.SERVICES,
) -> Flask:
    """Build the app. Without `settings` it reads `CYTOPENIA_*` and the config file, like the CLI.

    Everything a call needs lives on the app (services, site thresholds, the FHIR pool), never in a
    module global, so two apps in one process (tests, benchmarks) do not see each other's.
    """
    settings = settings or load_settings()
    verdict = require_startable(settings, online=True)
    configure_logging(settings.log_level)
    for warning in verdict.warnings:
        log.warning("configuration: %s", warning)
    if settings.as_of is not None:
        log.warning("every call is evaluated as of %s (as_of), not the real time", settings.as_of.isoformat())
        clock = partial(_fixed, settings.as_of)
    if settings.dev:
        print(f"WARNING: {DEV_WARNING}", file=sys.stderr)
    load_all()  # every table read and checked now: a broken one stops the start; forked workers share them
    get_logger("cds_service.startup").info(
        "configuration",
        services=[s.id for s in hooks.enabled_services(settings, services)],
        thresholds_changed=changed_thresholds(settings),
        redis=bool(settings.redis_url),
        database=bool(settings.database_url),
    )
    app = Flask(__name__)
    app.wsgi_app = taking_turns(app.wsgi_app)  # type: ignore[method-assign]
    app.config.update(SETTINGS=settings, CLOCK=clock, MAX_CONTENT_LENGTH=None)
    install_request_observability(app)
    install_cors(app, settings.cors_allowed, loopback=settings.dev)
    register_error_handlers(app)
    install_guard(app, settings)
    app.extensions["cytopenia.declared_services"] = tuple(services)
    app.extensions["cytopenia.services"] = tuple(hooks.enabled_services(settings, services))
    app.extensions["cytopenia.answering_services"] = tuple(hooks.answering_services(settings, services))
    app.extensions["cytopenia.thresholds"] = site_thresholds(settings.thresholds)
    app.extensions["cytopenia.fhir_access"] = FhirAccess.for_settings(settings)
    app.extensions["cytopenia.audit_secret"] = audit_secret(settings)
    try:
        app.extensions["cytopenia.store"] = open_store(
            settings.database_url,
            migrate=settings.migrate_on_start,
            deadline_seconds=settings.deadlines.database_seconds,
        )
    except SchemaNotCurrent as error:
        raise ConfigError(f"refusing to start:\n  database_url: {error}") from None
    app.register_blueprint(blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(smart_app.blueprint)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not settings.dev:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    return app
