"""Patients are stored only as a keyed hash: linkable across calls, not reversible without the key."""

from __future__ import annotations

import hashlib
import hmac

from cds_service.config import Settings

DEV_AUDIT_KEY = "cytopenia-cds-development-audit-key-not-secret"


def audit_secret(settings: Settings) -> bytes:
    """The configured key; development falls back to a public one with a warning (the pre-flight refuses
    production without a key)."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value().encode()
    return DEV_AUDIT_KEY.encode()


def patient_key(secret: bytes, patient_id: str) -> str:
    return hmac.new(secret, patient_id.encode(), hashlib.sha256).hexdigest()
