"""The effective configuration as an operator may see it: secrets masked, changed thresholds marked."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cds_service.clinical.knowledge import site_threshold, thresholds
from cds_service.config import Settings

MASK = "***"
SECRET_WORDS = ("password", "secret", "token", "private")


def mask_url(url: str) -> str:
    """Keep scheme, host and path; hide the password (and any query, which may carry credentials)."""
    parts = urlsplit(url)
    if parts.password is None and not parts.query:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.password is not None:
        netloc = f"{parts.username or ''}:{MASK}@{netloc}"
    elif parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if isinstance(value, str) and value:
        if any(word in key.lower() for word in SECRET_WORDS):
            return MASK
        if key.endswith("_url"):
            return mask_url(value)
    return value


def effective_configuration(settings: Settings) -> dict[str, Any]:
    """Every setting with its effective value, secrets masked, thresholds expanded with their cited defaults."""
    report = _masked(settings.model_dump(mode="json"))
    report["thresholds"] = threshold_report(settings)
    return report


def threshold_report(settings: Settings) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, cited in thresholds().items():
        effective = site_threshold(cited, settings.thresholds.get(name, cited.value))
        row: dict[str, Any] = {
            "value": effective.value,
            "unit": cited.unit,
            "changed": effective.cited_default is not None,
        }
        if row["changed"]:
            row["cited_default"] = cited.value
        row["source"] = cited.source
        rows[name] = row
    return rows


def changed_thresholds(settings: Settings) -> dict[str, str]:
    """For the startup log: name -> 'site value (cited default)'."""
    return {
        name: f"{row['value']:g} {row['unit']} (cited default {row['cited_default']:g})"
        for name, row in threshold_report(settings).items()
        if row["changed"]
    }
