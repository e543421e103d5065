"""The `jti` replay cache: a token is accepted once within its lifetime, across every worker that shares the store."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Protocol

import redis


class ReplayStoreUnavailable(Exception):
    """The shared store cannot answer; callers fail closed."""


class ReplayCache(Protocol):
    def first_use(self, issuer: str, jti: str, ttl_seconds: int) -> bool: ...


def _fingerprint(issuer: str, jti: str) -> str:
    """Bounded, opaque key: the jti is attacker-chosen and may be long or odd."""
    return hashlib.sha256(f"{issuer}\0{jti}".encode()).hexdigest()


class MemoryReplayCache:
    """For a single process (tests, one worker): expired entries are swept as new ones arrive."""

    def __init__(self, clock=time.monotonic):
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
            return bool(
                self._redis.set(self._prefix + _fingerprint(issuer, jti), b"1", nx=True, ex=max(1, ttl_seconds))
            )
        except redis.RedisError as error:
            raise ReplayStoreUnavailable(type(error).__name__) from None
