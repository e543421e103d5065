"""The project's own hostile-input suite: generated and hand-written bodies for every endpoint, feedback
included, against a real server per database (SQLite and PostgreSQL) and mode (development; production
with signed tokens and Redis). No 5xx (the one documented 503 aside), no stack trace, and the server
answers its liveness probe after every request.

Derandomised and bounded (a fixed number of examples per operation, no shrinking), so it runs the same
way every time in `make test`."""

from __future__ import annotations

import uuid

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.jwt_support import BASE_URL, SigningKey, bearer, claims
from tests.served import Server, production_settings

pytestmark = pytest.mark.server
EXAMPLES_PER_OPERATION = 20
REDIS_URL = "redis://127.0.0.1:6379/0"
UNHANDLED = "unhandled error while serving a request"  # cds_service/errors.py, before its 500


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES384")


@pytest.fixture(params=["development", "production"])
def hostile(request, database_url, tmp_path, key):
    """(server, credentials for a path): none in development mode, a fresh signed token in production."""
    if request.param == "development":
        server = Server(tmp_path, "--dev", database_url=database_url)

        def credentials(path: str) -> dict:
            return {}

    else:
        prefix = f"cytopenia-test-{uuid.uuid4().hex}:"
        server = Server(
            tmp_path,
            database_url=database_url,
            rate_limit="1000000 per minute",
            **production_settings(tmp_path, key, REDIS_URL, prefix),
        )
        request.addfinalizer(lambda: forget(prefix))

        def credentials(path: str) -> dict:
            return bearer(key.mint(claims(aud=BASE_URL + path)))

    yield server, credentials
    assert server.stop() == 0, server.output()[-4000:]
    assert UNHANDLED not in server.output(), server.output()[-4000:]


def forget(prefix: str) -> None:
    shared = redis.Redis.from_url(REDIS_URL)
    for stale in shared.scan_iter(match=f"{prefix}*"):
        shared.delete(stale)


def assert_alive(server: Server) -> None:
    probe = requests.get(server.url + "/healthz", timeout=30)
    assert probe.status_code == 200, server.output()[-4000:]


HOOK = "/cds-services/cytopenia-review"
FEEDBACK = HOOK + "/feedback"
HOSTILE = [
    (HOOK, b"\xff\xfe\x00not utf-8"),
    (HOOK, b'{"hook": "patient-view", "hookInstance": "a\\u0000b", "context": {"userId": "x", "patientId": "p"}}'),
    (HOOK, b'{"hook": "patient-view", "hookInstance": "' + b"i" * 5000 + b'", "context": {}}'),
    (HOOK, b'{"hook": "patient-view", "hook": ["twice"], "hookInstance": 1e999, "context": {"patientId": -0}}'),
    (HOOK, b'{"hook": "patient-view", "hookInstance": "x", "context": {"patientId": "p"}, "prefetch": {"p": 1e400}}'),
    (
        FEEDBACK,
        b'{"feedback": [{"card": "\\u0000", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00Z"}]}',
    ),
    (FEEDBACK, b'{"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "9999-99-99T99:99:99Z"}]}'),
    (
        FEEDBACK,
        b'{"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00+99:00"}]}',
    ),
    (FEEDBACK, b'{"feedback": {"card": "not a list"}}'),
    (FEEDBACK, b'{"feedback": [' + b",".join([b'{"card": "c"}'] * 5000) + b"]}"),
]


def test_hostile_requests_get_no_5xx_and_leave_the_server_alive(hostile):
    """Hand-written bodies first (each a 4xx OperationOutcome), then schema-valid and schema-violating
    bodies for every operation in /openapi.json, with every built-in check but positive data acceptance: a
    schema-valid body may still hold what the database cannot store (a NUL character) or name data that
    cannot be fetched (412), both declared."""
    hostile_server, credentials = hostile
    answers = []
    for path, body in HOSTILE:
        headers = {"Content-Type": "application/json", **credentials(path)}
        response = requests.post(hostile_server.url + path, data=body, headers=headers, timeout=30)
        answers.append((response.status_code, response.headers.get("Content-Type"), response.text[:200]))
        assert_alive(hostile_server)
    assert all(400 <= status < 500 and kind == "application/fhir+json" for status, kind, _ in answers), answers
    schema = schemathesis.openapi.from_url(hostile_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(operation.path.endswith("/feedback") for operation in operations)
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @given(case=cases)
        @settings(
            derandomize=True,
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case):
            response = case.call(headers=credentials(case.formatted_path), timeout=30)
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            assert "Traceback" not in response.text
            assert_alive(hostile_server)

        call()
