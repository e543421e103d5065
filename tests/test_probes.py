"""Probes an orchestrator relies on: alive, ready (knowledge loaded, Redis reachable), pluggable checks."""

from __future__ import annotations

import socket

import pytest

from cds_service.http import health
from cds_service.storage import Store
from tests.conftest import FIXTURES


def test_healthz_answers_without_credentials(make_app):
    app = make_app(
        dev=False,
        public_base_url="https://cds.example.org",
        workers=1,
        clients=[{"issuer": "https://ehr.example.org", "jwks_file": FIXTURES / "sandbox" / "jwks.json"}],
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}


def test_readyz_reports_each_check(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"knowledge": "ok", "redis": "not configured", "database": "ok"},
    }


def test_readyz_pings_the_configured_redis(make_app):
    response = make_app(redis_url="redis://127.0.0.1:6379/0").test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"


@pytest.mark.parametrize(
    ("decision", "status", "said"),
    [("per-worker", 200, "degraded: Redis unreachable"), ("refuse-calls", 503, "failing: Redis unreachable")],
)
def test_readyz_names_an_unreachable_redis_and_hides_the_password(make_app, decision, status, said):
    """Redis lost after start-up (at start-up an unreachable Redis already stops the server): degraded while
    hook calls go on with a replay cache per worker, not ready when they are refused."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    app = make_app(
        redis_url="redis://127.0.0.1:6379/0",
        deadlines={"readiness_check_seconds": 0.5},
        replay_cache_when_redis_lost=decision,
    )
    lost = app.config["SETTINGS"].model_copy(update={"redis_url": f"redis://:hunter2@127.0.0.1:{port}/0"})
    app.config["SETTINGS"] = lost
    response = app.test_client().get("/readyz")
    assert response.status_code == status
    body = response.get_json()
    assert body["status"] == {200: "degraded", 503: "not ready"}[status]
    assert body["checks"]["redis"].startswith(said)
    assert "hunter2" not in response.get_data(as_text=True)


@pytest.fixture
def extra_check():
    yield health.readiness_check
    health.READINESS_CHECKS.pop("message-queue", None)


def test_a_registered_check_takes_part_in_readiness(client, extra_check):
    @extra_check("message-queue")
    def message_queue(settings):
        raise health.NotReady("queue unreachable")

    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["message-queue"] == "failing: queue unreachable"


def test_readyz_is_503_when_the_database_is_gone(make_app):
    app = make_app()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    app.extensions["cytopenia.store"] = Store(f"postgresql+psycopg://cds@127.0.0.1:{port}/gone")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("failing: database unreachable")


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("DROP TABLE feedback", "failing: database schema incomplete: no table feedback"),
        (
            "UPDATE alembic_version SET version_num = '0999'",
            "failing: database schema at migration 0999, this version expects 0001",
        ),
    ],
)
def test_readyz_is_503_when_the_schema_is_not_the_one_this_code_expects(app, change, said):
    """The database answers, but without its tables (or at another migration) feedback and the audit fail."""
    with app.extensions["cytopenia.store"].engine.begin() as connection:
        connection.exec_driver_sql(change)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith(said)
