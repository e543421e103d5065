"""Trust check for every CDS Hooks call: who is calling, and may they."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NoReturn

from flask import Request

from cds_service.auth.registry import replay_cache, trusted_clients
from cds_service.auth.replay import ReplayStoreUnavailable
from cds_service.auth.tokens import Policy, Rejected, verify
from cds_service.config import Settings
from cds_service.observability.metrics import AUTH_FAILURES

log = logging.getLogger(__name__)


class CallRefused(Exception):
    """The call carries no acceptable credentials (the HTTP layer answers 401 and says nothing more)."""


class TrustUnavailable(Exception):
    """Callers cannot be verified right now (the HTTP layer answers 503: the EHR may retry)."""


@dataclass(frozen=True, slots=True)
class Caller:
    issuer: str | None
    tenant: str | None = None
    dev: bool = False
    fhir_servers: tuple[str, ...] = ()


class Trust:
    """Built once at start-up (so bad keys or an unreachable Redis stop the server), then asked per call."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._clients = trusted_clients(settings)
        self._replay = replay_cache(settings)
        self._policy = Policy(settings.jwt_leeway_seconds, settings.jwt_max_lifetime_seconds)

    def authenticate(self, request: Request) -> Caller:
        """Development mode admits calls without a token; a token that is present must always verify."""
        authorization = request.headers.get("Authorization")
        if authorization is None:
            if self._settings.dev:
                return Caller(issuer=None, dev=True)
            _deny(request, "no Authorization header", "missing_token")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _deny(request, "Authorization is not a Bearer token", "missing_token")
        base_url = self._settings.public_base_url or request.host_url.rstrip("/")
        try:
            client, claims = verify(token.strip(), base_url + request.path, self._clients, self._policy, self._replay)
        except Rejected as reason:
            _deny(request, str(reason), "invalid_token")
        except ReplayStoreUnavailable as error:
            log.error("replay cache unavailable (%s): refusing the call", error)
            raise TrustUnavailable("the service cannot verify callers right now; try again") from None
        return Caller(
            issuer=client.issuer,
            tenant=claims.get("tenant"),
            dev=self._settings.dev,
            fhir_servers=tuple(client.config.fhir_servers),
        )


def _deny(request: Request, reason: str, kind: str) -> NoReturn:
    """401 with nothing the caller could learn from; the reason goes to the log, the token never does,
    and the metric counts a bounded `kind`, not the free-text reason."""
    AUTH_FAILURES.labels(kind).inc()
    log.warning("CDS Hooks call refused: %s (%s %s)", reason, request.method, request.path[:200])
    raise CallRefused("authentication required")
