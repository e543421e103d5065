"""The gate in front of every CDS Hooks path and the SMART app's endpoint: who is calling first, then the
caller's rate limit.

Probes, metrics and the OpenAPI description are outside it: an orchestrator polling through one address
must never be throttled, and none of them touches patient data.
"""

from __future__ import annotations

from flask import Flask
from flask.globals import request_ctx

from cds_service.auth import CallRefused, Trust, TrustUnavailable
from cds_service.auth.introspection import AppTrust
from cds_service.auth.registry import redis_client
from cds_service.config import Settings
from cds_service.errors import ApiError
from cds_service.http.rate_limit import Limit, RateLimiter

# Checked by path, not per blueprint, so every route under it (discovery, services, feedback) is covered.
PROTECTED_PREFIX = "/cds-services"
APP_API_PREFIX = "/app/api/"  # the SMART app's endpoint: its SMART access token, by introspection
RETRY_AFTER_SECONDS = 5  # Redis comes back within seconds after a restart or fail-over


def _protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _limits(settings: Settings) -> tuple[Limit, dict[str, Limit]]:
    """Checked by the pre-flight (cds_service/preflight.py), which names a limit that cannot be read."""
    default = Limit.parse(settings.rate_limit)
    per_issuer = {client.issuer: Limit.parse(client.rate_limit) for client in settings.clients if client.rate_limit}
    return default, per_issuer


def install_guard(app: Flask, settings: Settings) -> None:
    """Authenticate, then rate-limit per client (issuer) so one EHR cannot starve another; calls without an
    issuer (development mode) are counted per address, the SMART app's per session."""
    default, per_issuer = _limits(settings)
    trust = Trust(settings)
    app_trust = AppTrust(settings)
    limiter = RateLimiter(redis_client(settings), settings.redis_key_prefix)

    @app.before_request
    def _authenticate_then_limit() -> None:
        request = request_ctx.request  # the object behind Flask's proxy, looked up once
        if request.method == "OPTIONS":
            return None
        app_call = request.path.startswith(APP_API_PREFIX)
        if not (app_call or _protected(request.path)):
            return None
        try:
            if app_call:
                app_caller = app_trust.authenticate(request)
            else:
                caller = trust.authenticate(request)
        except CallRefused as refused:
            raise ApiError(401, str(refused), headers={"WWW-Authenticate": "Bearer"}) from None
        except TrustUnavailable as unavailable:
            raise ApiError(503, str(unavailable), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
        if app_call:
            request.environ["cytopenia.app_caller"] = app_caller
            key, limit = app_caller.rate_limit_key, default
        else:
            request.environ["cytopenia.caller"] = caller
            if caller.issuer is not None:
                key, limit = f"client:{caller.issuer}", per_issuer.get(caller.issuer, default)
            else:
                key, limit = f"address:{request.remote_addr}", default
        if (wait := limiter.retry_after(key, limit)) is not None:
            raise ApiError(
                429,
                f"too many calls from this client: at most {limit.calls} per {limit.seconds} s; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        return None
