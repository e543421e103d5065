"""Trust check for every CDS Hooks call: who is calling, and may they."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Request

from cds_service.config import Settings
from cds_service.errors import ApiError


@dataclass(frozen=True, slots=True)
class Caller:
    issuer: str | None
    tenant: str | None = None
    dev: bool = False
    fhir_servers: tuple[str, ...] = ()


def authenticate(request: Request, settings: Settings) -> Caller:
    """Development mode admits anyone; otherwise deny until a JWT from a registered client verifies."""
    if settings.dev:
        return Caller(issuer=None, dev=True)
    raise ApiError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
