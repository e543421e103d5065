"""The gate in front of every CDS Hooks path and the SMART app's endpoint: who is calling first, then
the caller's rate limit."""

from __future__ import annotations

from flask import Flask, g, request
from flask_limiter import Limiter

from cds_service.auth import CallRefused, Trust, TrustUnavailable
from cds_service.auth.introspection import AppTrust
from cds_service.config import Settings
from cds_service.errors import ApiError

# Checked by path, not per blueprint, so every route under it (discovery, services, feedback) is covered.
PROTECTED_PREFIX = "/cds-services"
APP_API_PREFIX = "/app/api/"  # the SMART app's endpoint: its SMART access token, by introspection


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _rate_limit_key() -> str:
    return g.get("rate_limit_key") or f"address:{request.remote_addr}"


def _limiter(app: Flask, settings: Settings) -> Limiter:
    return Limiter(
        _rate_limit_key,
        app=app,
        default_limits=[settings.rate_limit],
        storage_uri=settings.redis_url or "memory://",
        key_prefix=f"{settings.redis_key_prefix}ratelimit",
        headers_enabled=True,
    )


def install_guard(app: Flask, settings: Settings) -> None:
    """Authenticate, then rate-limit per client (issuer) so one EHR cannot starve another. The limiter's
    own check is registered after ours, so it sees who the caller is."""
    trust = Trust(settings)
    app_trust = AppTrust(settings)

    @app.before_request
    def _authenticate():
        if request.method == "OPTIONS":
            return None
        app_call = request.path.startswith(APP_API_PREFIX)
        if not (app_call or _protected(request.path)):
            return None
        try:
            caller = app_trust.authenticate(request) if app_call else trust.authenticate(request)
        except CallRefused as refused:
            raise ApiError(401, str(refused), headers={"WWW-Authenticate": "Bearer"}) from None
        except TrustUnavailable as unavailable:
            raise ApiError(503, str(unavailable)) from None
        if app_call:
            request.environ["cytopenia.app_caller"] = caller
            g.rate_limit_key = caller.rate_limit_key
            return None
        request.environ["cytopenia.caller"] = caller
        if caller.issuer is not None:
            g.rate_limit_key = f"client:{caller.issuer}"
        return None

    _limiter(app, settings)
