"""The `jti` replay cache: a token is accepted once within its lifetime, across every worker that shares the store."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

from cds_service.compute_turn import waiting
from cds_service.observability.metrics import REPLAY_CACHE_FALLBACKS

log = logging.getLogger(__name__)
RETRY_REDIS_AFTER_SECONDS = 5


class ReplayStoreUnavailable(Exception):
    """The shared store cannot answer; callers fail closed."""


class ReplayCache(Protocol):
    def first_use(self, issuer: str, jti: str, ttl_seconds: int) -> bool: ...


def _fingerprint(issuer: str, jti: str) -> str:
    """Bounded, opaque key: the jti is attacker-chosen and may be long or odd."""
    return hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()


class MemoryReplayCache:
    """For a single process (tests, one worker): expired entries are swept as new ones arrive."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._seen: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def first_use(self, issuer: str, jti: str, ttl_seconds: int) -> bool:
        now = self._clock()
        key = _fingerprint(issuer, jti)
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {k: until for k, until in self._seen.items() if until > now}
            if self._seen.get(key, now) > now:
                return False
            self._seen[key] = now + ttl_seconds
            return True


class RedisReplayCache:
    """Shared by every worker and replica: SET NX with an expiry is atomic, so only one call wins."""

    def __init__(self, client: redis.Redis, prefix: str):
        self._redis = client
        self._prefix = f"{prefix}jti:"

    def first_use(self, issuer: str, jti: str, ttl_seconds: int) -> bool:
        try:
            with waiting():
                return bool(
                    self._redis.set(self._prefix + _fingerprint(issuer, jti), b"1", nx=True, ex=max(1, ttl_seconds))
                )
        except redis.RedisError as error:
            raise ReplayStoreUnavailable(type(error).__name__) from None


class WorkerFallbackReplayCache:
    """Redis while it answers; while it does not, this worker's own cache, loudly (an error log line and
    `cytopenia_replay_cache_fallbacks_total`). A token replayed to the same worker is still refused; one
    replayed to another worker during the outage is not. Chosen because failing closed would withhold
    every card, febrile neutropenia included, for as long as Redis is down (docs/operations-resilience.md)."""

    def __init__(self, shared: RedisReplayCache, clock: Callable[[], float] = time.monotonic) -> None:
        self._shared = shared
        self._own = MemoryReplayCache(clock)
        self._clock = clock
        self._shared_lost_until = 0.0

    def first_use(self, issuer: str, jti: str, ttl_seconds: int) -> bool:
        if self._clock() >= self._shared_lost_until:
            try:
                return self._shared.first_use(issuer, jti, ttl_seconds)
            except ReplayStoreUnavailable as error:
                # Ask Redis again only after a pause: a Redis that drops packets costs each call its timeout.
                self._shared_lost_until = self._clock() + RETRY_REDIS_AFTER_SECONDS
                log.error("replay cache unavailable (%s)", error)
        REPLAY_CACHE_FALLBACKS.inc()
        log.error("replay cache unavailable: checking this token against this worker's cache only")
        return self._own.first_use(issuer, jti, ttl_seconds)
