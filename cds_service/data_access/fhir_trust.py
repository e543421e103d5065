"""Which FHIR server a hook call may send us to, and the token only that server may receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cds_service.auth import Caller
from cds_service.config import Settings
from cds_service.request import Json


class Refused(Exception):
    """The request's fhirServer may not be used; the message is safe to show the EHR."""


@dataclass(frozen=True, slots=True)
class FhirServer:
    """A fhirServer that passed the trust checks, with the token it (and only it) may receive."""

    base: str
    token: str | None = field(default=None, repr=False)

    def owns(self, url: str) -> bool:
        """Same scheme, host and port as the base: the only place the token may go."""
        return origin(url) == origin(self.base)

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/fhir+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"https": 443, "http": 80}.get(scheme)


def trusted_server(request: Json, settings: Settings, caller: Caller) -> FhirServer:
    """The request's fhirServer if this client may send us there; otherwise Refused saying why."""
    base = request.get("fhirServer")
    if not isinstance(base, str) or not base:
        raise Refused("the request has no fhirServer")
    base = base.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise Refused("fhirServer is not an http(s) base URL")
    if parts.query or parts.fragment:
        raise Refused("fhirServer must not carry a query or fragment")
    if parts.scheme != "https" and not settings.dev:
        raise Refused("fhirServer must use https")
    bound = caller.fhir_servers or tuple(settings.fhir_server_allowlist)
    if bound and not any(origin(base) == origin(b) and base.lower() == b.rstrip("/").lower() for b in bound):
        raise Refused("fhirServer is not a FHIR server configured for this client")
    if not bound and not settings.dev:
        raise Refused("no FHIR server is configured for this client")
    authorization = request.get("fhirAuthorization")
    token = authorization.get("access_token") if isinstance(authorization, dict) else None
    return FhirServer(base, token if isinstance(token, str) and token else None)
