"""Every check a configuration must pass before the service may start, in one place.

`serve` (through `create_app`) and `config check` both call `review`, so the pre-flight cannot say
"OK" to a configuration the server refuses. Static checks read only the settings and the files they
name; reachability of Redis and the database is checked only when `online` (always by `serve`).
Each problem names its setting, and all of them are reported at once.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from cds_service.config import ConfigError, Settings

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


@dataclass(frozen=True, slots=True)
class Problem:
    setting: str
    message: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


@dataclass(frozen=True, slots=True)
class Verdict:
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _https(url: str) -> bool:
    return urlsplit(url).scheme == "https"


def _worker_count(settings: Settings) -> int:
    from cds_service.serving import available_cpus

    return settings.workers or available_cpus()


def _trust_errors(settings: Settings) -> list[Problem]:
    errors = []
    if not settings.dev and not settings.trust_configured:
        errors.append(
            Problem(
                "clients",
                "no trusted EHR clients are configured ([[clients]] in the config file); "
                "use --dev (or CYTOPENIA_DEV=1) for local development",
            )
        )
    if not settings.dev and not settings.public_base_url:
        errors.append(
            Problem(
                "public_base_url",
                "required outside development mode (the https URL EHRs call; every token's aud is checked against it)",
            )
        )
    elif not settings.dev and settings.public_base_url and not _https(settings.public_base_url):
        errors.append(Problem("public_base_url", "must be an https URL outside development mode"))
    seen = set()
    for index, client in enumerate(settings.clients):
        if client.issuer in seen:
            errors.append(Problem(f"clients[{index}].issuer", f"{client.issuer!r} is registered twice"))
        seen.add(client.issuer)
        if client.jwks_url is not None and not _https(client.jwks_url) and not _is_loopback_url(client.jwks_url):
            errors.append(Problem(f"clients[{index}].jwks_url", "must be an https URL"))
        if client.jwks_file is not None:
            from cds_service.auth.keys import FileKeySet  # the JWT stack, only when there is a key file

            try:
                FileKeySet(client.jwks_file)
            except ValueError as error:
                errors.append(Problem(f"clients[{index}].jwks_file", str(error)))
    introspection = settings.smart_app.introspection_url
    if introspection and not settings.dev and not _https(introspection) and not _is_loopback_url(introspection):
        errors.append(Problem("smart_app.introspection_url", "must be an https URL outside development mode"))
    return errors


def _writable(directory: Path) -> bool:
    """Can the directory be created (if missing) and written by this process?"""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def _store_errors(settings: Settings) -> list[Problem]:
    """The database URL parses, names an installed driver and, for a SQLite file, a writable place.
    Parse errors are reported without the URL: it may carry a password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(settings.database_url)
        url.get_dialect().import_dbapi()
    except ArgumentError:
        return [Problem("database_url", "is not a database URL (e.g. postgresql+psycopg://user@host/db)")]
    except NoSuchModuleError:
        return [Problem("database_url", f"unknown database kind {settings.database_url.partition(':')[0]!r}")]
    except ImportError as error:
        return [Problem("database_url", f"its driver {error.name!r} is not installed")]
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        directory = Path(url.database).absolute().parent
        if not _writable(directory):
            return [Problem("database_url", f"cannot write the SQLite database in {directory}")]
    return []


def _static_errors(settings: Settings) -> list[Problem]:
    from cds_service.http.rate_limit import Limit

    errors = _trust_errors(settings) + _store_errors(settings)
    if settings.redis_url and urlsplit(settings.redis_url).scheme not in REDIS_SCHEMES:
        errors.append(Problem("redis_url", f"must start with {', '.join(f'{s}://' for s in sorted(REDIS_SCHEMES))}"))
    if not settings.dev and settings.audit_key is None:
        errors.append(
            Problem(
                "audit_key",
                "required outside development mode (CYTOPENIA_AUDIT_KEY): patient ids are stored only as a keyed "
                "hash and the key must be secret",
            )
        )
    if not settings.dev and not settings.redis_url and _worker_count(settings) > 1:
        errors.append(
            Problem(
                "redis_url",
                "required with more than one worker outside development mode (every worker must share the jti "
                "replay cache), or set workers = 1",
            )
        )
    limits = {"rate_limit": settings.rate_limit} | {
        f"clients[{index}].rate_limit": client.rate_limit
        for index, client in enumerate(settings.clients)
        if client.rate_limit is not None
    }
    for field, text in limits.items():
        try:
            Limit.parse(text)
        except ValueError as error:
            errors.append(Problem(field, str(error)))
    if settings.services_enabled:
        from cds_service import hooks  # every service module, only when the choice needs checking

        known = {s.id for s in hooks.SERVICES} | set(hooks.RETIRED_IDS)
        unknown = sorted(set(settings.services_enabled) - known)
        if unknown:
            errors.append(Problem("services_enabled", f"no service with id {', '.join(unknown)}"))
    if settings.as_of is not None and not settings.dev:
        errors.append(Problem("as_of", "only in development mode: production evaluates every call at the real time"))
    return errors


def _warnings(settings: Settings) -> list[Problem]:
    warnings = []
    if settings.dev:
        warnings.append(
            Problem("dev", "development mode: unauthenticated calls and the public Sandbox's published key accepted")
        )
        if settings.audit_key is None:
            warnings.append(Problem("audit_key", "not set: patient ids are hashed with a public development key"))
    if "*" in settings.cors_origins:
        warnings.append(Problem("cors_origins", "'*' lets every web page call this service from a browser"))
    if not settings.dev:
        for index, client in enumerate(settings.clients):
            for url in client.fhir_servers:
                if not _https(url):
                    warnings.append(Problem(f"clients[{index}].fhir_servers", f"{url} is not https"))
        for url in settings.fhir_server_allowlist:
            if not _https(url):
                warnings.append(Problem("fhir_server_allowlist", f"{url} is not https"))
        if settings.allow_private_fhir_servers:
            warnings.append(Problem("allow_private_fhir_servers", "FHIR servers on private addresses are reachable"))
    return warnings


def _online_errors(settings: Settings) -> list[Problem]:
    """Can the service reach what it needs? Only the class of the error is shown: it may carry a password."""
    import redis
    from sqlalchemy import create_engine, text

    errors = []
    if settings.redis_url:
        try:
            with redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2) as client:
                client.ping()
        except (redis.RedisError, ValueError) as error:
            errors.append(Problem("redis_url", f"cannot reach Redis ({type(error).__name__})"))
    if not settings.database_url.startswith("sqlite"):
        engine = create_engine(settings.database_url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - any driver error means "not reachable"; its class is reported
            errors.append(Problem("database_url", f"cannot reach the database ({type(error).__name__})"))
        finally:
            engine.dispose()
    return errors


def review(settings: Settings, *, online: bool = False) -> Verdict:
    errors = _static_errors(settings)
    if online and not errors:
        errors += _online_errors(settings)
    return Verdict(tuple(errors), tuple(_warnings(settings)))


def require_startable(settings: Settings, *, online: bool = False) -> Verdict:
    """The verdict, or ConfigError listing every error with its setting."""
    verdict = review(settings, online=online)
    if verdict.errors:
        raise ConfigError("refusing to start:\n" + "\n".join(f"  {problem}" for problem in verdict.errors))
    return verdict
