"""The trusted EHR clients and the replay store, built from configuration at start-up."""

from __future__ import annotations

import ipaddress
import logging
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import redis

from cds_service.auth.keys import FileKeySet, UrlKeySet
from cds_service.auth.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from cds_service.auth.tokens import TrustedClient
from cds_service.config import ClientConfig, ConfigError, Settings
from cds_service.serving import available_cpus

log = logging.getLogger(__name__)

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JWKS_URL = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_WARNING = (
    "DEVELOPMENT MODE: tokens from the public CDS Hooks Sandbox (%s) are accepted. Its private key is "
    "published, so anyone can mint them: never run like this with real patient data."
)


def sandbox_client() -> ClientConfig:
    """The Sandbox's published key set, shipped as data; its `jku` names the URL it is published at."""
    path = Path(str(resources.files(__package__).joinpath("data/sandbox-jwks.json")))
    return ClientConfig(issuer=SANDBOX_ISSUER, jwks_file=path, algorithms=["ES384"], jku_allowlist=[SANDBOX_JWKS_URL])


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_public_base_url(settings: Settings) -> None:
    if settings.dev:
        return
    if not settings.public_base_url:
        raise ConfigError(
            "invalid configuration: public_base_url: required outside development mode "
            "(the https URL EHRs call; every token's aud is checked against it)"
        )
    if urlsplit(settings.public_base_url).scheme != "https":
        raise ConfigError("invalid configuration: public_base_url: must be an https URL outside development mode")


def _key_set(index: int, client: ClientConfig):
    field = f"clients[{index}]"
    if client.jwks_url is not None:
        if urlsplit(client.jwks_url).scheme != "https" and not is_loopback(client.jwks_url):
            raise ConfigError(f"invalid configuration: {field}.jwks_url: must be an https URL")
        return UrlKeySet(client.jwks_url)
    try:
        return FileKeySet(client.jwks_file)
    except ValueError as error:
        raise ConfigError(f"invalid configuration: {field}.jwks_file: {error}") from None


def trusted_clients(settings: Settings) -> dict[str, TrustedClient]:
    """One entry per issuer; in development mode the Sandbox too, unless the file registers it itself."""
    _check_public_base_url(settings)
    clients: dict[str, TrustedClient] = {}
    for index, config in enumerate(settings.clients):
        if config.issuer in clients:
            raise ConfigError(f"invalid configuration: clients[{index}].issuer: {config.issuer!r} is registered twice")
        clients[config.issuer] = TrustedClient(config, _key_set(index, config))
    if settings.dev and SANDBOX_ISSUER not in clients:
        sandbox = sandbox_client()
        clients[SANDBOX_ISSUER] = TrustedClient(sandbox, FileKeySet(sandbox.jwks_file))
        log.warning(SANDBOX_WARNING, SANDBOX_ISSUER)
    return clients


def redis_client(settings: Settings) -> redis.Redis | None:
    """Shared store for replay protection and rate limits; checked at start-up so a typo fails fast."""
    if not settings.redis_url:
        return None
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except (redis.RedisError, ValueError) as error:
        raise ConfigError(f"invalid configuration: redis_url: cannot reach Redis ({type(error).__name__})") from None
    return client


def replay_cache(settings: Settings) -> ReplayCache:
    client = redis_client(settings)
    if client is None:
        if (settings.workers or available_cpus()) > 1 and not settings.dev:
            raise ConfigError(
                "invalid configuration: redis_url: required with more than one worker outside development mode "
                "(every worker must share the jti replay cache), or set workers = 1"
            )
        return MemoryReplayCache()
    return RedisReplayCache(client, settings.redis_key_prefix)
