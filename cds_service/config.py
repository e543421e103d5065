"""One configuration model: environment (`CYTOPENIA_*`) over the TOML file over defaults."""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

ENV_PREFIX = "CYTOPENIA_"
# The file `load_settings` was given, for the duration of that call only: never written to os.environ,
# where it would silently configure every later Settings() in the process.
_CONFIG_FILE: ContextVar[str | None] = ContextVar("cytopenia_config_file", default=None)
# CDS Hooks 2.0 forbids `none` and every HMAC algorithm; these are the asymmetric ones PyJWT verifies.
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and why."""


class ClientConfig(BaseModel):
    """A trusted EHR client: who signs, with which keys, and where its tokens may be sent."""

    model_config = {"extra": "forbid"}

    issuer: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["ES384", "RS384"], min_length=1)
    jku_allowlist: list[str] = Field(default_factory=list)
    tenants: list[str] = Field(default_factory=list)
    fhir_servers: list[str] = Field(default_factory=list)
    rate_limit: str | None = None  # this issuer's own limit, e.g. "30000 per minute"; default: Settings.rate_limit

    @field_validator("issuer")
    @classmethod
    def _issuer_present(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in SIGNING_ALGORITHMS]
        if refused:
            raise ValueError(f"{refused} not allowed; use asymmetric algorithms such as ES384 or RS384")
        return value

    @model_validator(mode="after")
    def _one_key_set(self) -> ClientConfig:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError(f"client {self.issuer!r} needs exactly one of jwks_url or jwks_file")
        return self

    @property
    def accepted_jku(self) -> frozenset[str]:
        """`jku` values this client may name: its own key-set URL and the allowlist, never anything else."""
        return frozenset([*self.jku_allowlist, *([self.jwks_url] if self.jwks_url else [])])


class Deadlines(BaseModel):
    """Time budgets in seconds: a hook answer too late for the EHR is no answer."""

    model_config = {"extra": "forbid"}

    request_seconds: float = Field(default=10.0, gt=0, le=300)
    # A client has this long to send a whole request (head and body); then the connection is dropped.
    request_read_seconds: float = Field(default=10.0, gt=0, le=300)
    readiness_check_seconds: float = Field(default=2.0, gt=0, le=60)
    # A PostgreSQL connection the service has held this long is cut: a database that stops answering
    # costs a hook call this (and a reconnect), not TCP's minutes. Calls take milliseconds.
    database_seconds: float = Field(default=2.0, gt=0, le=60)


class SmartAppConfig(BaseModel):
    """The SMART app under /app/: its client id at the EHR, and where its access tokens are checked."""

    model_config = {"extra": "forbid"}

    client_id: str = "cytopenia-cds"
    # RFC 7662 / SMART App Launch 2 token introspection at the EHR's authorization server.
    introspection_url: str | None = None
    introspection_client_id: str | None = None
    introspection_client_secret: SecretStr | None = None
    introspection_cache_seconds: int = Field(default=60, ge=0, le=600)
    introspection_timeout_seconds: float = Field(default=2.0, gt=0, le=30)


def default_database_url() -> str:
    """SQLite in the per-user data directory ($XDG_DATA_HOME, else ~/.local/share): never the working
    directory, where a checkout would track it and `git checkout` could corrupt it."""
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{data_home / 'cytopenia-cds' / 'cytopenia-cds.sqlite3'}"


def _known_thresholds() -> set[str]:
    return set(_cited_values())


def _cited_values() -> dict[str, float]:
    """The clinical threshold table read as a table: configuration sits below the clinical layer."""
    from cds_service.knowledge_tables import read_table

    return {row["name"]: float(row["value"]) for row in read_table("cds_service.clinical", "thresholds.csv")}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    dev: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int | None = Field(default=None, ge=1, le=64)  # None: one per available CPU
    public_base_url: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    clients: list[ClientConfig] = Field(default_factory=list)
    fever_lookback_hours: float | None = Field(default=None, gt=0, le=168)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_max_lifetime_seconds: int = Field(default=3600, ge=60, le=86400)
    redis_url: str | None = None
    redis_key_prefix: str = "cytopenia:"
    # Per issuer. One issuer can be a whole health system's EHR: a large one at peak opens perhaps 50
    # charts a second, each calling a few services; 200 calls a second leaves room and still stops a loop.
    rate_limit: str = "12000 per minute"
    # While Redis is lost: keep answering with a replay cache per worker (a missing febrile-neutropenia card
    # is the greater harm), or refuse every call with 503 until it is back. See docs/operations-resilience.md.
    replay_cache_when_redis_lost: Literal["per-worker", "refuse-calls"] = "per-worker"
    max_json_depth: int = Field(default=100, ge=8, le=1000)
    database_url: str = Field(default_factory=default_database_url)
    # False where a separate `cytopenia-cds migrate` job owns the schema, so the service needs no DDL rights.
    migrate_on_start: bool = True
    # Development only: evaluate every call as of this moment, for demos on historical (e.g. Synthea) data.
    as_of: datetime | None = None
    audit_key: SecretStr | None = None
    repeat_window_hours: float = Field(default=24, ge=0)
    override_snooze_hours: float = Field(default=72, ge=0)
    # Fetching what prefetch did not bring, from the EHR's fhirServer (spec: answer "on the order of 500 ms").
    fhir_deadline_ms: int = Field(default=450, ge=50, le=30_000)
    fhir_connect_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    fhir_read_timeout_ms: int = Field(default=400, ge=10, le=30_000)
    fhir_max_pages: int = Field(default=5, ge=1, le=100)
    fhir_max_entries: int = Field(default=1000, ge=1, le=100_000)
    fhir_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    fhir_server_allowlist: list[str] = Field(default_factory=list)
    allow_private_fhir_servers: bool = False
    deadlines: Deadlines = Field(default_factory=Deadlines)
    smart_app: SmartAppConfig = Field(default_factory=SmartAppConfig)
    services_enabled: list[str] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("thresholds")
    @classmethod
    def _cited_thresholds_only(cls, value: dict[str, float]) -> dict[str, float]:
        """A site may retune a cited threshold by name; it cannot invent one or make it non-positive."""
        unknown = sorted(set(value) - _known_thresholds())
        if unknown:
            raise ValueError(
                f"unknown threshold {', '.join(unknown)} (known: {', '.join(sorted(_known_thresholds()))})"
            )
        bad = sorted(name for name, number in value.items() if not number > 0)
        if bad:
            raise ValueError(f"threshold {', '.join(bad)} must be a positive number")
        effective = {name: value.get(name, cited) for name, cited in _cited_values().items()}
        if effective["history_lookback_days"] < effective["stale_result_days"]:
            raise ValueError(
                "history_lookback_days must be at least stale_result_days: a count is 'not current' before it "
                "becomes history"
            )
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of_in_utc_unless_zoned(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("fhir_server_allowlist")
    @classmethod
    def _fhir_bases_without_trailing_slash(cls, value: list[str]) -> list[str]:
        return [url.rstrip("/") for url in value]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _CONFIG_FILE.get() or os.environ.get(f"{ENV_PREFIX}CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def trust_configured(self) -> bool:
        return bool(self.clients)

    @property
    def cors_allowed(self) -> list[str]:
        """Dev mode also admits the public CDS Hooks Sandbox (and, in the CORS layer, any loopback origin);
        production only what is configured."""
        return [*self.cors_origins, "https://sandbox.cds-hooks.org"] if self.dev else list(self.cors_origins)


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Read settings; a bad file or value raises ConfigError naming the field."""
    if config_file is not None and not Path(config_file).is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    chosen = _CONFIG_FILE.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"invalid configuration: {error}") from None
    finally:
        _CONFIG_FILE.reset(chosen)
