"""One configuration model: environment (`CYTOPENIA_*`) over the TOML file over defaults."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

ENV_PREFIX = "CYTOPENIA_"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and why."""


class ClientConfig(BaseModel):
    """A trusted EHR client: who signs, with which keys, and where its tokens may be sent."""

    model_config = {"extra": "forbid"}

    issuer: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["ES384", "RS384"])
    tenants: list[str] = Field(default_factory=list)
    fhir_servers: list[str] = Field(default_factory=list)


class Deadlines(BaseModel):
    """Time budgets in seconds: a hook answer too late for the EHR is no answer."""

    model_config = {"extra": "forbid"}

    request_seconds: float = Field(default=10.0, gt=0, le=300)
    readiness_check_seconds: float = Field(default=2.0, gt=0, le=60)


def _known_thresholds() -> set[str]:
    from cds_service.clinical.knowledge import thresholds

    return set(thresholds())


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
    deadlines: Deadlines = Field(default_factory=Deadlines)
    database_url: str | None = None
    redis_url: str | None = None
    services_enabled: list[str] | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("thresholds")
    @classmethod
    def _cited_thresholds_only(cls, value: dict[str, float]) -> dict[str, float]:
        """A site may retune a cited threshold by name; it cannot invent one or make it non-positive."""
        unknown = sorted(set(value) - _known_thresholds())
        if unknown:
            raise ValueError(f"unknown threshold {', '.join(unknown)} (known: {', '.join(sorted(_known_thresholds()))})")
        bad = sorted(name for name, number in value.items() if not number > 0)
        if bad:
            raise ValueError(f"threshold {', '.join(bad)} must be a positive number")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def trust_configured(self) -> bool:
        return bool(self.clients)

    @property
    def cors_allowed(self) -> list[str]:
        """Dev mode also admits the public CDS Hooks Sandbox; production only what is configured."""
        return [*self.cors_origins, "https://sandbox.cds-hooks.org"] if self.dev else list(self.cors_origins)


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Read settings; a bad file or value raises ConfigError naming the field."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        os.environ[f"{ENV_PREFIX}CONFIG"] = str(path)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"invalid configuration: {error}") from None
