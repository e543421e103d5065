"""The trusted EHR clients and the replay store, built from configuration at start-up."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import redis

from cds_service.auth.keys import FileKeySet, UrlKeySet
from cds_service.auth.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
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


def _key_set(client: ClientConfig):
    return UrlKeySet(client.jwks_url) if client.jwks_url is not None else FileKeySet(client.jwks_file)


def trusted_clients(settings: Settings) -> dict[str, TrustedClient]:
    """One entry per issuer (the pre-flight refused duplicates and unusable key sets); in development mode
    the Sandbox too, unless the file registers it itself."""
    clients: dict[str, TrustedClient] = {}
    for config in settings.clients:
        clients[config.issuer] = TrustedClient(config, _key_set(config))
    if settings.dev and SANDBOX_ISSUER not in clients:
        sandbox = sandbox_client()
        clients[SANDBOX_ISSUER] = TrustedClient(sandbox, FileKeySet(sandbox.jwks_file))
        log.warning(SANDBOX_WARNING, SANDBOX_ISSUER)
    return clients


def replay_cache(settings: Settings) -> ReplayCache:
    """Shared through Redis when configured (the pre-flight checked it answers and that a single worker
    is all that runs without it)."""
    if not settings.redis_url:
        return MemoryReplayCache()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return RedisReplayCache(client, settings.redis_key_prefix)
