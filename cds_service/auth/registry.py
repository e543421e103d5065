"""The trusted EHR clients and the replay store, built from configuration at start-up."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cds_service.auth.keys import FileKeySet, UrlKeySet
from cds_service.auth.replay import MemoryReplayCache, RedisReplayCache, ReplayCache, WorkerFallbackReplayCache
from cds_service.auth.tokens import TrustedClient
from cds_service.config import ClientConfig, Settings

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


def _key_set(client: ClientConfig) -> UrlKeySet | FileKeySet:
    if client.jwks_url is not None:
        return UrlKeySet(client.jwks_url)
    # ClientConfig's validator requires exactly one of jwks_url and jwks_file.
    assert client.jwks_file is not None
    return FileKeySet(client.jwks_file)


def trusted_clients(settings: Settings) -> dict[str, TrustedClient]:
    """One entry per issuer (the pre-flight refused duplicates and unusable key sets); in development mode
    the Sandbox too, unless the file registers it itself."""
    clients: dict[str, TrustedClient] = {}
    for config in settings.clients:
        clients[config.issuer] = TrustedClient(config, _key_set(config))
    if settings.dev and SANDBOX_ISSUER not in clients:
        sandbox = sandbox_client()
        assert sandbox.jwks_file is not None  # sandbox_client() always sets it
        clients[SANDBOX_ISSUER] = TrustedClient(sandbox, FileKeySet(sandbox.jwks_file))
        log.warning(SANDBOX_WARNING, SANDBOX_ISSUER)
    return clients


REDIS_TIMEOUT_SECONDS = 1  # a Redis that does not answer in this time is treated as lost


def redis_client(settings: Settings) -> redis.Redis | None:
    """Shared store for replay protection and rate limits (the pre-flight checked at start-up that it answers)."""
    if not settings.redis_url:
        return None
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),  # one retry on a fresh connection, not redis-py's ten with backoff
    )


def replay_cache(settings: Settings) -> ReplayCache:
    """Shared through Redis when configured (the pre-flight checked it answers and that a single worker
    is all that runs without it)."""
    client = redis_client(settings)
    if client is None:
        return MemoryReplayCache()
    shared = RedisReplayCache(client, settings.redis_key_prefix)
    return shared if settings.replay_cache_when_redis_lost == "refuse-calls" else WorkerFallbackReplayCache(shared)
