"""Trust for the SMART app's endpoint: the app's own SMART access token, checked by introspection.

Why introspection rather than a token the card link carries: the app must work without `appContext`
(several EHRs do not pass it through), and the SMART access token is the one credential every launch
has. The EHR's authorization server says, per RFC 7662 and SMART App Launch 2 "token introspection",
whether the token is active, for which client, which patient and which scopes. The endpoint then
serves only that patient, only to this app's client id, only with a scope that reads Observations.

Answers are cached (by a hash of the token, never the token) for a short time so that one screen of
the app costs one introspection. Reasons for a refusal go to the log; tokens and patient ids never do.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import NoReturn

import requests
from flask import Request

from cds_service.auth import CallRefused, TrustUnavailable
from cds_service.compute_turn import waiting
from cds_service.config import Settings
from cds_service.observability.metrics import AUTH_FAILURES

log = logging.getLogger(__name__)
CACHE_ENTRIES = 1024
# SMART v2 (`.rs`, `.r`, `.cruds`) and v1 (`.read`, `.*`) scopes that let a token read Observations.
OBSERVATION_READ = ("Observation", "*")


@dataclass(frozen=True, slots=True)
class AppCaller:
    """Who called the app endpoint: the patient the token is for (None only in dev mode without a token)."""

    patient: str | None
    client_id: str | None
    session: str  # a hash of the token: the rate-limit key, safe to keep

    @property
    def rate_limit_key(self) -> str:
        return f"smart-app:{self.session}"


def reads_observations(scopes: frozenset[str]) -> bool:
    for scope in scopes:
        context, _, rest = scope.partition("/")
        resource, _, permission = rest.partition(".")
        if context not in ("patient", "user", "system") or resource not in OBSERVATION_READ:
            continue
        permission = permission.split("?")[0]
        if permission in ("read", "*") or ("r" in permission and set(permission) <= set("cruds")):
            return True
    return False


class AppTrust:
    """Built once at start-up; asked per call to /app/api/."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._config = settings.smart_app
        self._cache: OrderedDict[str, tuple[float, AppCaller]] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, request: Request) -> AppCaller:
        """Development mode without an introspection endpoint admits every call (there is nothing to check
        a token against); otherwise a token must be sent, and must introspect as active, for this app,
        for a patient."""
        authorization = request.headers.get("Authorization")
        endpoint = self._config.introspection_url
        if self._settings.dev and endpoint is None:
            return AppCaller(patient=None, client_id=None, session="dev")
        if authorization is None:
            _deny(request, "no Authorization header", "missing_token")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            _deny(request, "Authorization is not a Bearer token", "missing_token")
        if endpoint is None:
            _deny(request, "smart_app.introspection_url is not configured: app tokens cannot be checked", "app_config")
        session = hashlib.sha256(token.encode()).hexdigest()[:32]
        if (cached := self._cached(session)) is not None:
            return cached
        answer = self._introspect(endpoint, token)
        now = time.time()
        problem = self._problem(answer, now)
        if problem:
            _deny(request, problem, "invalid_token")
        caller = AppCaller(patient=answer["patient"], client_id=answer.get("client_id"), session=session)
        expires = answer.get("exp")
        until = min(now + self._config.introspection_cache_seconds, float(expires) if expires else now)
        self._remember(session, until, caller)
        return caller

    def _problem(self, answer: dict, now: float) -> str | None:
        if answer.get("active") is not True:
            return "token is not active"
        expires = answer.get("exp")
        if expires is not None and (not isinstance(expires, (int, float)) or expires <= now):
            return "token has expired"
        if answer.get("client_id") != self._config.client_id:
            return "token was issued to another client"
        if not isinstance(answer.get("patient"), str) or not answer["patient"]:
            return "token carries no patient context"
        if not reads_observations(frozenset(str(answer.get("scope") or "").split())):
            return "token's scopes do not read Observations"
        return None

    def _introspect(self, endpoint: str, token: str) -> dict:
        config = self._config
        auth = None
        if config.introspection_client_id:
            secret = config.introspection_client_secret.get_secret_value() if config.introspection_client_secret else ""
            auth = (config.introspection_client_id, secret)
        try:
            with waiting():
                response = requests.post(
                    endpoint,
                    data={"token": token},
                    auth=auth,
                    headers={"Accept": "application/json"},
                    timeout=config.introspection_timeout_seconds,
                    allow_redirects=False,
                )
        except requests.RequestException as error:
            log.error("token introspection failed: %s", type(error).__name__)
            raise TrustUnavailable("the service cannot check the app's token right now; try again") from None
        if response.status_code != 200:
            log.error("token introspection answered HTTP %s", response.status_code)
            raise TrustUnavailable("the service cannot check the app's token right now; try again")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            log.error("token introspection answered something other than a JSON object")
            raise TrustUnavailable("the service cannot check the app's token right now; try again")
        return answer

    def _cached(self, session: str) -> AppCaller | None:
        with self._lock:
            entry = self._cache.get(session)
            if entry is None:
                return None
            until, caller = entry
            if until <= time.time():
                del self._cache[session]
                return None
            self._cache.move_to_end(session)
            return caller

    def _remember(self, session: str, until: float, caller: AppCaller) -> None:
        if until <= time.time():
            return
        with self._lock:
            self._cache[session] = (until, caller)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)


def _deny(request: Request, reason: str, kind: str) -> NoReturn:
    AUTH_FAILURES.labels(kind).inc()
    log.warning("SMART app call refused: %s (%s %s)", reason, request.method, request.path[:200])
    raise CallRefused("authentication required")
