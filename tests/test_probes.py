"""Probes an orchestrator relies on: alive, ready (knowledge loaded, Redis reachable), pluggable checks."""
from __future__ import annotations

import socket

import pytest

from cds_service.http import health


def test_healthz_answers_without_credentials(make_app):
    response = make_app(dev=False, clients=[{"issuer": "https://ehr.example.org"}]).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}


def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"knowledge": "ok", "redis": "not configured"}}


def test_readyz_pings_the_configured_redis(make_app):
    response = make_app(redis_url="redis://127.0.0.1:6379/0").test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"


def test_readyz_is_503_when_redis_is_unreachable_and_hides_the_password(make_app):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    app = make_app(redis_url=f"redis://:hunter2@127.0.0.1:{port}/0", deadlines={"readiness_check_seconds": 0.5})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert body["checks"]["redis"].startswith("failing: Redis unreachable")
    assert "hunter2" not in response.get_data(as_text=True)


@pytest.fixture
def extra_check():
    yield health.readiness_check
    health.READINESS_CHECKS.pop("database", None)


def test_a_registered_check_takes_part_in_readiness(client, extra_check):
    @extra_check("database")
    def database(settings):
        raise health.NotReady("database unreachable")

    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "failing: database unreachable"
