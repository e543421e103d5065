"""The rate limiter and the replay cache when Redis cannot answer: counted here, never an error."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cds_service.auth.replay import RedisReplayCache, WorkerFallbackReplayCache
from cds_service.http.rate_limit import Limit, RateLimiter

LOST = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))  # nothing listens on port 1


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "limit"), [("12000 per minute", Limit(12000, 60)), ("5/second", Limit(5, 1))])
def test_limits_are_read_as_written(text, limit):
    assert Limit.parse(text) == limit


@pytest.mark.parametrize("text", ["plenty", "0 per minute", "5 per fortnight"])
def test_a_limit_that_cannot_be_read_is_refused(text):
    with pytest.raises(ValueError, match="not like '12000 per minute'"):
        Limit.parse(text)


def test_without_redis_the_worker_counts_and_retry_after_is_the_rest_of_the_window():
    clock = Clock(1_000_040.5)  # 20.5 s into a minute window
    limiter = RateLimiter(LOST, "test:", clock=clock)
    limit = Limit(2, 60)
    assert [limiter.retry_after("client:a", limit) for _ in range(3)] == [None, None, 40]
    assert limiter.retry_after("client:b", limit) is None  # per client
    clock.now += 40  # the next window
    assert limiter.retry_after("client:a", limit) is None


def test_while_redis_is_lost_a_token_replayed_to_the_same_worker_is_still_refused():
    cache = WorkerFallbackReplayCache(RedisReplayCache(LOST, "test:"))
    assert cache.first_use("https://ehr.test", "jti-1", 300) is True
    assert cache.first_use("https://ehr.test", "jti-1", 300) is False
    assert cache.first_use("https://ehr.test", "jti-2", 300) is True
