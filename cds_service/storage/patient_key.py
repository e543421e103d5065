"""Patients are stored only as a keyed hash: linkable across calls, not reversible without the key."""

from __future__ import annotations

import hashlib
import hmac
import logging

from cds_service.config import ConfigError, Settings

log = logging.getLogger(__name__)

DEV_AUDIT_KEY = "cytopenia-cds-development-audit-key-not-secret"


def audit_secret(settings: Settings) -> bytes:
    """The configured key; development falls back to a public one (with a warning), production refuses."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value().encode()
    if not settings.dev:
        raise ConfigError(
            "refusing to start: no audit_key is configured (CYTOPENIA_AUDIT_KEY); patient ids are "
            "stored only as a keyed hash and the key must be secret"
        )
    log.warning("no audit_key configured: patient ids are hashed with a public development key")
    return DEV_AUDIT_KEY.encode()


def patient_key(secret: bytes, patient_id: str) -> str:
    return hmac.new(secret, patient_id.encode(), hashlib.sha256).hexdigest()
