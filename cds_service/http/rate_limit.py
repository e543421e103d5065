"""Calls per EHR client (issuer) per window, counted in Redis (shared by every worker and replica) or here.

A fixed window, one Redis round trip per call, no thread. The limit protects the service and the other
EHRs from one runaway client; it must never be what stops a hospital's clinicians. If Redis cannot
count, this worker counts alone (the limit then applies per worker), logs and counts that, and answers:
a storage error is never the caller's problem.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from cds_service.compute_turn import waiting
from cds_service.observability.metrics import RATE_LIMIT_STORAGE_ERRORS

log = logging.getLogger(__name__)
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RETRY_REDIS_AFTER_SECONDS = 5
SPELLING = re.compile(r"\s*(\d+)\s*(?:per|/)\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Limit:
    calls: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """Read "12000 per minute" (or "/minute", "per hour", "per second", "per day"); ValueError otherwise."""
        match = SPELLING.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"{text!r} is not like '12000 per minute'")
        return cls(int(match.group(1)), WINDOWS[match.group(2).lower()])


class MemoryCounts:
    """This process's counts; finished windows are dropped once the oldest count is stale."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, seconds: int, window: int, now: float) -> int:
        with self._lock:
            if self._counts:
                _, oldest_seconds, oldest_window = next(iter(self._counts))
                if oldest_window < now // oldest_seconds:
                    self._counts = {k: n for k, n in self._counts.items() if k[2] >= now // k[1]}
            slot = (key, seconds, window)
            count = self._counts[slot] = self._counts.get(slot, 0) + 1
            return count


class RateLimiter:
    def __init__(self, client: redis.Redis | None, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._prefix = f"{prefix}ratelimit:"
        self._memory = MemoryCounts()
        self._clock = clock
        self._redis_lost_until = 0.0

    def retry_after(self, key: str, limit: Limit) -> int | None:
        """None if this call is within `limit`; else the seconds until the window ends (for Retry-After)."""
        now = self._clock()
        window = int(now // limit.seconds)
        if self._count(key, limit.seconds, window, now) <= limit.calls:
            return None
        return max(1, math.ceil((window + 1) * limit.seconds - now))

    def _count(self, key: str, seconds: int, window: int, now: float) -> int:
        if self._redis is not None and now >= self._redis_lost_until:
            name = f"{self._prefix}{seconds}:{key}:{window}"
            try:
                pipeline = self._redis.pipeline(transaction=False)
                pipeline.incr(name)
                pipeline.expire(name, seconds + 1)
                with waiting():
                    count, _ = pipeline.execute()
                return int(count)
            except redis.RedisError as error:
                self._redis_lost_until = now + RETRY_REDIS_AFTER_SECONDS  # then ask again
                log.error("rate-limit counts unavailable in Redis (%s): this worker counts alone", type(error).__name__)
        if self._redis is not None:
            RATE_LIMIT_STORAGE_ERRORS.inc()
        return self._memory.hit(key, seconds, window, now)
