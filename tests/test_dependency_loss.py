"""Dependencies lost, service honest: a real gunicorn in production mode whose Redis and PostgreSQL sit behind
proxies this test cuts (the shared ones are never stopped). Liveness and metrics never depend on either;
readiness names what is down; hook calls follow the configured decision; Retry-After only on 429 and 503."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests

from tests.conftest import EXAMPLES, POSTGRES_URL
from tests.jwt_support import BASE_URL, SERVICE_PATH, SigningKey, bearer, claims
from tests.served import Server, production_settings
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.server
EXAMPLE = json.loads((EXAMPLES / "patient-view-neutropenia.json").read_text())
REDIS_PORT = 6379


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture
def redis_proxy():
    proxy = TcpProxy(REDIS_PORT)
    yield proxy
    proxy.close()


@pytest.fixture
def production(tmp_path, key, redis_proxy):
    """A production-mode server factory: signed tokens, replay cache and rate limits in Redis via the proxy."""
    prefix = f"cytopenia-test-{uuid.uuid4().hex}:"
    servers = []

    def start(**settings: str) -> Server:
        server = Server(
            tmp_path,
            **production_settings(tmp_path, key, f"redis://127.0.0.1:{redis_proxy.port}/0", prefix),
            deadlines__readiness_check_seconds="1",
            repeat_window_hours="0",  # every call shows its cards: no repeat is held back
            **settings,
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    shared = redis.Redis(port=REDIS_PORT)
    for stale in shared.scan_iter(match=f"{prefix}*"):
        shared.delete(stale)


def hook_call(server: Server, key: SigningKey) -> requests.Response:
    return requests.post(server.url + SERVICE_PATH, json=EXAMPLE, headers=bearer(key.mint(claims())), timeout=30)


def test_redis_lost_probes_and_metrics_answer_and_hook_calls_still_get_cards(production, key, redis_proxy):
    """The default decision: a missing febrile-neutropenia card is the greater harm, so while Redis is lost
    each worker keeps its own replay cache (a token replayed to the same worker is still refused)."""
    server = production()
    assert hook_call(server, key).status_code == 200
    redis_proxy.cut()
    for path in ("/healthz", "/metrics"):
        response = requests.get(server.url + path, timeout=30)
        assert response.status_code == 200, (path, response.text[:300], server.output()[-3000:])
        assert "Retry-After" not in response.headers
    ready = requests.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"].startswith("degraded: Redis unreachable")
    call = hook_call(server, key)
    assert call.status_code == 200, (call.text[:300], server.output()[-3000:])
    assert call.json()["cards"] and "Retry-After" not in call.headers
    metrics = requests.get(server.url + "/metrics", timeout=30).text
    assert "cytopenia_replay_cache_fallbacks_total" in metrics
    assert "replay cache unavailable" in server.output()
    redis_proxy.restore()
    assert hook_call(server, key).status_code == 200
    assert requests.get(server.url + "/readyz", timeout=30).json()["status"] == "ready"


def test_a_redis_that_stops_answering_costs_calls_seconds_not_the_worker(production, key, redis_proxy):
    """Packets dropped rather than refused: every Redis call would wait for its timeout. Calls are still
    answered, well inside the EHR's patience, and the worker asks Redis again only after a pause."""
    server = production()
    assert hook_call(server, key).status_code == 200
    redis_proxy.stall()
    started = time.monotonic()
    answered = [hook_call(server, key) for _ in range(4)]
    elapsed = time.monotonic() - started
    assert [r.status_code for r in answered] == [200] * 4, server.output()[-3000:]
    assert elapsed < 30, f"4 calls took {elapsed:.1f} s with Redis stalled"
    assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_redis_lost_with_calls_refused_the_503_says_when_to_retry(production, key, redis_proxy):
    server = production(replay_cache_when_redis_lost="refuse-calls")
    redis_proxy.cut()
    call = hook_call(server, key)
    assert call.status_code == 503 and call.json()["resourceType"] == "OperationOutcome"
    assert int(call.headers["Retry-After"]) > 0
    ready = requests.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith("failing: Redis unreachable")
    assert requests.get(server.url + "/healthz", timeout=30).status_code == 200


def test_probes_are_never_rate_limited_and_200s_carry_no_retry_after(production, key):
    server = production(rate_limit="2 per minute")
    for path in ("/healthz", "/readyz", "/metrics", "/healthz", "/readyz", "/metrics", "/openapi.json"):
        response = requests.get(server.url + path, timeout=30)
        assert response.status_code == 200, path
        assert "Retry-After" not in response.headers and not any(h.startswith("X-RateLimit") for h in response.headers)
    answered = [hook_call(server, key) for _ in range(3)]
    assert [r.status_code for r in answered] == [200, 200, 429]
    assert "Retry-After" not in answered[0].headers
    assert 0 < int(answered[2].headers["Retry-After"]) <= 60


@pytest.fixture
def postgres_proxy():
    proxy = TcpProxy(5432)
    yield proxy
    proxy.close()


def test_database_lost_liveness_holds_readiness_names_it_and_hook_calls_answer(
    production, key, database_url, postgres_proxy
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the database is cut through a TCP proxy: PostgreSQL only")
    proxied = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{postgres_proxy.port}")
    assert proxied != database_url and POSTGRES_URL in database_url
    server = production(database_url=proxied)
    assert hook_call(server, key).status_code == 200
    postgres_proxy.cut()
    assert requests.get(server.url + "/healthz", timeout=30).status_code == 200
    ready = requests.get(server.url + "/readyz", timeout=30)
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failing: database unreachable")
    call = hook_call(server, key)
    assert call.status_code == 200 and call.json()["cards"], call.text[:300]
    feedback = requests.post(
        server.url + SERVICE_PATH + "/feedback",
        json={"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:05:00Z"}]},
        headers=bearer(key.mint(claims(aud=BASE_URL + SERVICE_PATH + "/feedback"))),
        timeout=30,
    )
    assert feedback.status_code == 503 and feedback.headers["Retry-After"] == "5"  # its own, not the limiter's
    postgres_proxy.restore()
    server.wait_until(lambda: server.answers("/readyz"), "readiness did not return with the database")


def test_a_database_that_stops_answering_costs_calls_seconds_not_their_answer(
    production, key, database_url, postgres_proxy
):
    """Packets dropped rather than refused: a hook call still gets its cards within the EHR's patience,
    and readiness says the database is down, instead of both waiting for TCP to give up."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database is stalled through a TCP proxy: PostgreSQL only")
    proxied = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{postgres_proxy.port}")
    server = production(database_url=proxied, workers=1)  # one worker: the second call meets the same one
    assert hook_call(server, key).status_code == 200
    postgres_proxy.stall()
    started = time.monotonic()
    call = hook_call(server, key)
    elapsed = time.monotonic() - started
    assert call.status_code == 200 and call.json()["cards"], call.text[:300]
    assert elapsed < 20, (
        f"the call took {elapsed:.1f} s with the database stalled; server output:\n{server.output()[-3000:]}"
    )
    again = hook_call(server, key)  # the worker skips the database a moment instead of waiting for it again
    assert again.status_code == 200 and again.json()["cards"], again.text[:300]
    assert "not asked again yet" in server.output(), server.output()[-3000:]
    ready = requests.get(server.url + "/readyz", timeout=60)
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failing"), ready.text
