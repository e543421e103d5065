"""Fault injection: every misbehaving FHIR server costs at most the deadline plus a margin, with an outcome said."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from tests.conftest import assert_valid
from tests.misbehaving_fhir import dripping, endless_next, fhir, huge, refused_base, send, serving, slow

DEADLINE_MS = 300
# Thread hand-over, Flask, the audit write on a loaded 2-core CI machine; still well short of the faults' 5 s,
# so a call that waited for the fault instead of its deadline fails.
MARGIN_S = 3.0
SERVER_ERROR = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "exception", "details": {"text": "database unavailable"}}],
}

FAULTS = {
    "slow server": (slow(5, fhir({"resourceType": "Bundle", "type": "searchset"})), "in time"),
    "HTTP 500 with OperationOutcome": (fhir(SERVER_ERROR, 500), "HTTP 500: database unavailable"),
    "malformed JSON": (lambda h: send(h, 200, b'{"resourceType": "Bundle", "entry": ['), "malformed JSON"),
    "non-FHIR content type": (lambda h: send(h, 200, b"<html>login</html>", "text/html"), "text/html, not FHIR JSON"),
    "body dripping past the deadline": (dripping(4000, 0.01), "in time"),
    "huge declared response": (huge(16, declare_length=True), "larger than"),
    "huge undeclared response": (huge(16, declare_length=False), "larger than"),
    "redirect to another host": (
        lambda h: send(h, 302, b"", headers={"Location": "https://elsewhere.example/x"}),
        "another host",
    ),
    "token refused": (fhir(SERVER_ERROR, 401), "the access token was refused"),
}


@pytest.fixture
def app_client(make_app):
    return make_app(fhir_deadline_ms=DEADLINE_MS, fhir_max_bytes=4 * 1024 * 1024).test_client()


def _call(app_client, request, base):
    request["fhirServer"] = base
    request["fhirAuthorization"] = {
        "access_token": "fault-token",
        "token_type": "Bearer",
        "expires_in": 60,
        "scope": "patient/*.read",
        "subject": "ehr",
    }
    started = time.monotonic()
    response = app_client.post("/cds-services/cytopenia-review", json=request)
    return response, time.monotonic() - started


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_fault_on_required_data_is_a_prompt_412_saying_why(app_client, example_request, fault):
    answer, said = FAULTS[fault]
    del example_request["prefetch"]["bloodCounts"]
    with serving({"Observation": answer}) as (base, _):
        response, elapsed = _call(app_client, example_request, base)
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    assert response.status_code == 412
    text = response.get_json()["issue"][0]["details"]["text"]
    assert "'bloodCounts'" in text and said in text


def test_connection_refused_is_a_prompt_412(app_client, example_request):
    del example_request["prefetch"]["bloodCounts"]
    response, elapsed = _call(app_client, example_request, refused_base())
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    assert response.status_code == 412
    assert "could not be reached" in response.get_json()["issue"][0]["details"]["text"]


def test_endless_next_chain_stops_at_the_page_limit_and_says_so(app_client, example_request):
    del example_request["prefetch"]["conditions"]
    with serving({"Condition": endless_next}) as (base, seen):
        response, elapsed = _call(app_client, example_request, base)
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    assert response.status_code == 200
    assert len(seen) <= 5
    document = response.get_json()
    assert_valid("response", document)
    assert any(
        "conditions" in c.get("detail", "") and "later pages were not read" in c.get("detail", "")
        for c in document["cards"]
    )


def test_slow_optional_data_still_answers_in_time_and_names_what_is_missing(app_client, example_request):
    del example_request["prefetch"]["conditions"]
    with serving({"Condition": slow(5, fhir({"resourceType": "Bundle", "type": "searchset"}))}) as (base, _):
        response, elapsed = _call(app_client, example_request, base)
    assert elapsed < DEADLINE_MS / 1000 + MARGIN_S
    assert response.status_code == 200
    document = response.get_json()
    assert_valid("response", document)
    [pancytopenia] = document["cards"]
    assert "conditions" in pancytopenia["detail"] and "not answered in time" in pancytopenia["detail"]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_fetch_timeouts_errors_and_latency_show_in_the_metrics(app_client, example_request):
    """An operator's dashboard sees the EHR's FHIR server misbehave; it does not stay at zero."""
    timeouts = _sample("cytopenia_fhir_fetch_timeouts_total", resource_type="Observation")
    errors = _sample("cytopenia_fhir_fetch_errors_total", reason="server_error")
    timed = _sample("cytopenia_fhir_fetch_duration_seconds_count", resource_type="Observation")
    del example_request["prefetch"]["bloodCounts"]
    with serving({"Observation": slow(5, fhir({"resourceType": "Bundle", "type": "searchset"}))}) as (base, _):
        assert _call(app_client, dict(example_request), base)[0].status_code == 412
    with serving({"Observation": fhir(SERVER_ERROR, 500)}) as (base, _):
        assert _call(app_client, dict(example_request), base)[0].status_code == 412
    assert _sample("cytopenia_fhir_fetch_timeouts_total", resource_type="Observation") == timeouts + 1
    assert _sample("cytopenia_fhir_fetch_errors_total", reason="server_error") == errors + 1
    assert _sample("cytopenia_fhir_fetch_duration_seconds_count", resource_type="Observation") >= timed + 1
