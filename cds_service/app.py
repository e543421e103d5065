"""The Flask app factory: configuration in, a ready WSGI app out."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone

from flask import Flask, Response

from cds_service.config import ConfigError, Settings, load_settings
from cds_service.errors import register_error_handlers
from cds_service.http.cors import install_cors
from cds_service.http.guard import install_guard
from cds_service.http.routes import blueprint
from cds_service.storage import open_store
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
    return datetime.now(timezone.utc)


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now) -> Flask:
    """Build the app. Without `settings` it reads `CYTOPENIA_*` and the config file, like the CLI."""
    settings = settings or load_settings()
    if not settings.dev and not settings.trust_configured:
        raise ConfigError(
            "refusing to start: no trusted EHR clients are configured ([[clients]] in the config file); "
            "use --dev (or CYTOPENIA_DEV=1) for local development"
        )
    if settings.dev:
        log.warning(DEV_WARNING)
        print(f"WARNING: {DEV_WARNING}", file=sys.stderr)
    app = Flask(__name__)
    app.config.update(SETTINGS=settings, CLOCK=clock, MAX_CONTENT_LENGTH=None)
    install_cors(app, settings.cors_allowed)
    register_error_handlers(app)
    install_guard(app, settings)
    app.extensions["cytopenia.audit_secret"] = audit_secret(settings)
    app.extensions["cytopenia.store"] = open_store(settings.database_url)
    app.register_blueprint(blueprint)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not settings.dev:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    return app
