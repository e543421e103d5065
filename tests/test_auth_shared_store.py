"""Two workers (two app instances) sharing the machine's real Redis: a jti is accepted once, limits are shared."""

from __future__ import annotations

import uuid

import pytest
import redis

from cds_service.config import ClientConfig
from tests.jwt_support import BASE_URL, EHR_ISSUER, SERVICE_PATH, SigningKey, bearer, claims, write_jwks

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix():
    value = f"cytopenia-test-{uuid.uuid4().hex}:"
    yield value
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(match=f"{value}*"):
        store.delete(key)


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture
def workers(make_app, key, tmp_path, prefix):
    def factory(rate_limit: str = "600 per minute", **more):
        client = ClientConfig(
            issuer=EHR_ISSUER, jwks_file=write_jwks(tmp_path / "jwks.json", key), algorithms=["ES384"]
        )
        settings = dict(
            dev=False,
            workers=2,
            public_base_url=BASE_URL,
            clients=[client],
            redis_url=REDIS_URL,
            redis_key_prefix=prefix,
            rate_limit=rate_limit,
            **more,
        )
        return make_app(**settings).test_client(), make_app(**settings).test_client()

    return factory


def test_a_token_replayed_to_another_worker_is_refused(workers, key, example_request, prefix):
    first, second = workers()
    token = key.mint(claims())
    assert first.post(SERVICE_PATH, json=example_request, headers=bearer(token)).status_code == 200
    replay = second.post(SERVICE_PATH, json=example_request, headers=bearer(token))
    assert replay.status_code == 401
    stored = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}jti:*"))
    assert len(stored) == 1 and 0 < redis.Redis.from_url(REDIS_URL).ttl(stored[0]) <= 330


def test_the_rate_limit_is_shared_by_workers_and_answers_429_operation_outcome(workers, key, example_request):
    first, second = workers(rate_limit="2 per minute")
    for http in (first, second):
        assert http.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims()))).status_code == 200
    limited = first.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims())))
    assert limited.status_code == 429
    assert limited.get_json()["resourceType"] == "OperationOutcome"
    assert limited.get_json()["issue"][0]["code"] == "throttled"
    assert int(limited.headers["Retry-After"]) > 0


def test_when_redis_fails_mid_run_and_calls_are_refused_they_fail_closed_with_503(
    workers, key, example_request, monkeypatch
):
    first, _ = workers(replay_cache_when_redis_lost="refuse-calls")

    def unavailable(*args, **kwargs):
        raise redis.ConnectionError("connection lost")

    monkeypatch.setattr(redis.Redis, "set", unavailable)
    response = first.post(SERVICE_PATH, json=example_request, headers=bearer(key.mint(claims())))
    assert response.status_code == 503
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert response.headers["Retry-After"] == "5"
