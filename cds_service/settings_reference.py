"""The settings reference page (docs/reference/settings.md), generated from the settings model.

Names, types and defaults come from `cds_service.config`; only the meaning of each setting is
written here, and a test fails when a setting has none or the page is out of date. Regenerate with
`python -m cds_service.settings_reference > docs/reference/settings.md`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from cds_service.config import ENV_PREFIX, ClientConfig, Deadlines, Settings, SmartAppConfig

MEANING = {
    "dev": "development mode: unauthenticated calls, the public Sandbox's key, any loopback CORS origin",
    "host": "listen address (the container image sets `0.0.0.0`)",
    "port": "listen port",
    "workers": "gunicorn worker processes; unset: one per CPU the process may use (affinity and cgroup quota)",
    "public_base_url": "the https URL EHRs call; every token's `aud` is checked against it. Required outside dev",
    "cors_origins": "browser origins allowed to call (`*` allowed, with a warning). Dev adds the public Sandbox",
    "max_request_bytes": "larger request bodies get 413",
    "clients": "trusted EHR clients (`[[clients]]`, below); production refuses to start without one",
    "fever_lookback_hours": "how far back a temperature counts as current fever; unset: the cited value",
    "jwt_leeway_seconds": "clock skew tolerated on a token's `exp`, `iat` and `nbf`",
    "jwt_max_lifetime_seconds": "tokens living longer than this are refused",
    "redis_url": "shared jti replay cache and rate limits; required outside dev with more than one worker",
    "redis_key_prefix": "prefix of every Redis key the service writes",
    "rate_limit": "calls per EHR client (issuer) in a window, e.g. `12000 per minute` (also per second, hour, "
    "day); over it 429 with Retry-After. Probes are never limited",
    "replay_cache_when_redis_lost": "while Redis is lost: `per-worker` (each worker keeps its own jti cache; calls "
    "answered, counted, logged) or `refuse-calls` (503 with Retry-After). See Operations, Resilience",
    "max_json_depth": "deeper JSON request bodies get 400",
    "database_url": "SQLAlchemy URL of the audit trail, feedback and alert-fatigue store "
    "(PostgreSQL: `postgresql+psycopg://...`). Default: SQLite in the per-user data directory "
    "(`$XDG_DATA_HOME/cytopenia-cds/`, else `~/.local/share/cytopenia-cds/`); "
    "the container image sets `/var/lib/cytopenia-cds/`",
    "migrate_on_start": "bring the schema to this release at start; `false` where `cytopenia-cds migrate` "
    "(e.g. a Kubernetes Job) owns the schema: the service then only checks it is current and needs no DDL rights",
    "as_of": "development only (refused in production): evaluate every call as of this ISO 8601 time, "
    "for demos on historical data; also `serve --as-of` and `evaluate --as-of`",
    "audit_key": "HMAC key for patient ids in the store. Required outside dev (dev uses a public key, with a warning)",
    "repeat_window_hours": "the same card for the same patient and results is held back this long; 0 shows it always",
    "override_snooze_hours": "an override with a reason holds the card back this long, unless it gets worse",
    "fhir_deadline_ms": "budget for fetching what prefetch did not bring from the EHR's `fhirServer`",
    "fhir_connect_timeout_ms": "connect timeout of one FHIR request",
    "fhir_read_timeout_ms": "read timeout of one FHIR request",
    "fhir_max_pages": "Bundle pages followed per search",
    "fhir_max_entries": "entries read per search and per prefetch key (a longer prefetch: the newest, and the "
    "card says how many were left out)",
    "fhir_max_bytes": "bytes read per FHIR response",
    "fhir_server_allowlist": "FHIR servers a caller without its own `fhir_servers` may name (http warned outside dev)",
    "allow_private_fhir_servers": "allow `fhirServer` on private addresses outside dev (warned)",
    "deadlines": "time budgets (`[deadlines]`, below)",
    "services_enabled": "ids of the services to offer (a retired id enables what replaced it); unset: all",
    "thresholds": "site overrides of cited thresholds by name (`[thresholds]`); `config check` shows each change",
    "log_level": "`DEBUG`, `INFO`, `WARNING` or `ERROR`",
    "clients.issuer": "the `iss` of the client's JWTs",
    "clients.jwks_url": "https URL of the client's JWK Set (exactly one of `jwks_url` and `jwks_file`)",
    "clients.jwks_file": "a JWK Set file on disk",
    "clients.algorithms": "signing algorithms accepted from this client (asymmetric only)",
    "clients.jku_allowlist": "other key-set URLs the client's `jku` header may name",
    "clients.tenants": "accepted `tenant` claims; empty: any",
    "clients.fhir_servers": "FHIR base URLs this client's `fhirServer` may name",
    "clients.rate_limit": "this client's own limit (as `rate_limit`); unset: the global one",
    "smart_app": "the SMART app under `/app/` (`[smart_app]`, below)",
    "smart_app.client_id": "the app's client id at the EHR",
    "smart_app.introspection_url": "where the app's access tokens are checked (RFC 7662 token introspection); "
    "https outside dev. Without it production refuses the app's endpoint",
    "smart_app.introspection_client_id": "client id for the introspection endpoint, if it needs one",
    "smart_app.introspection_client_secret": "client secret for the introspection endpoint (masked by `config check`)",
    "smart_app.introspection_cache_seconds": "how long an introspection answer is reused",
    "smart_app.introspection_timeout_seconds": "timeout of one introspection call",
    "deadlines.request_seconds": "budget of one hook call (also sets gunicorn's worker timeout)",
    "deadlines.readiness_check_seconds": "timeout of each `/readyz` dependency check",
    "deadlines.database_seconds": "longest the service holds a PostgreSQL connection for one piece of work "
    "(a hook call's transaction, a readiness check, a feedback write) before cutting it as lost; also its "
    "connect timeout",
    "deadlines.request_read_seconds": "time a client has to send a whole request (head and body); then the "
    "connection is dropped, so slow clients hold no thread",
}


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if field.default_factory is not None and isinstance(value, str):  # computed per user: see the meaning
        return "see meaning"
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value)}`"


def _type(field: FieldInfo) -> str:
    """`int | None` as `int or unset`: a bare `|` would split the Markdown table cell."""
    text = str(field.annotation)
    for noise in ("typing.", "<class '", "'>", "cds_service.config.", "pathlib.", "datetime.", "pydantic.types."):
        text = text.replace(noise, "")
    return text.replace(" | None", " or unset").replace(" | ", " or ")


def _rows(model: type[BaseModel], prefix: str, env: bool) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        env_name = f"`{ENV_PREFIX}{key.replace('.', '__').upper()}`" if env else "–"
        rows.append(f"| `{key}` | {env_name} | {_type(field)} | {_default(field)} | {MEANING[key]} |")
    return rows


def render() -> str:
    header = "| Setting | Environment | Type | Default | Meaning |\n|---|---|---|---|---|"
    sections: list[Any] = [
        "# Settings reference",
        "",
        "Generated from the settings model (`cds_service/config.py`) by "
        "`python -m cds_service.settings_reference`; do not edit by hand.",
        "",
        "Precedence: a command-line flag (`serve --host/--port/--workers/--dev/--as-of`) over the environment "
        f"(`{ENV_PREFIX}*`, nested with `__`) over the TOML file (`--config FILE` or `{ENV_PREFIX}CONFIG`) over "
        "these defaults. Unknown keys are errors. `cytopenia-cds config check` runs the same checks as `serve` "
        "and lists every problem at once.",
        "",
        header,
        *_rows(Settings, "", True),
        "",
        "## `[[clients]]`: a trusted EHR",
        "",
        header,
        *_rows(ClientConfig, "clients.", False),
        "",
        "## `[deadlines]`",
        "",
        header,
        *_rows(Deadlines, "deadlines.", True),
        "",
        "## `[smart_app]`: the SMART app ([SMART app](../smart-app.md))",
        "",
        header,
        *_rows(SmartAppConfig, "smart_app.", True),
    ]
    return "\n".join(sections) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
