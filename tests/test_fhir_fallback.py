"""Live fallback against a real FHIR engine (Medplum on loopback): nothing prefetched, everything fetched."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import pytest

from tests.conftest import assert_valid, load_fixture
from tests.fhir_engine import FhirEngine

pytestmark = pytest.mark.server
WHITNEY_FILE = "Whitney_Ortiz_b9bbc884-486e-4159-9bf3-c666ecb90df7.json"
WHITNEY = "2744ab6f-91dd-4e4f-8208-fe52ee2c27d1"
AFTER_WHITNEYS_CBC = datetime(2016, 1, 20, tzinfo=UTC)
ROOMY_DEADLINE_MS = 10_000  # correctness here; the engine's first (JIT-cold) searches on a shared machine are slow


@pytest.fixture(scope="module")
def engine():
    engine = FhirEngine.start()
    try:
        engine.load(load_fixture(f"synthea-r4/{WHITNEY_FILE}"))
        engine.load(load_fixture("hl7-r4-examples/Patient-pat2.json"))
        engine.load(load_fixture("hl7-r4-examples/Bundle-101.json"))
        yield engine
    finally:
        engine.stop()


def _request(engine: FhirEngine, patient_id: str, token: str, **extra) -> dict:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
        "fhirServer": engine.base,
        "fhirAuthorization": {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cytopenia-cds",
        },
        **extra,
    }


@pytest.fixture
def client(make_app):
    return make_app(
        AFTER_WHITNEYS_CBC, fhir_deadline_ms=ROOMY_DEADLINE_MS, fhir_read_timeout_ms=ROOMY_DEADLINE_MS
    ).test_client()


def test_nothing_prefetched_everything_fetched_with_the_bearer_token(engine, client):
    token = f"token-{uuid.uuid4()}"
    response = client.post("/cds-services/cytopenia-review", json=_request(engine, WHITNEY, token))
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    anaemia = next(c for c in document["cards"] if c["summary"].startswith("Anaemia"))
    assert "Hb 12.6 g/dL" in anaemia["summary"]  # clinical form: one decimal, no limit between
    assert "Observation/3d4d78f5-c7da-4b2b-b8d0-7f1bd29dac78" in anaemia["detail"]
    assert "Observation/r1" not in anaemia["detail"]  # pat2's results on the same server stay out
    seen = [r for r in engine.requests_seen() if r["authorization"] == f"Bearer {token}"]
    assert sorted(r["url"].split("?")[0] for r in seen) == [
        "/AllergyIntolerance",
        "/Condition",
        "/DiagnosticReport",
        "/Encounter",
        "/MedicationRequest",
        "/Observation",  # blood counts
        "/Observation",  # pregnancy status
        "/Observation",  # vitals
        f"/Patient/{WHITNEY}",
    ]
    assert all("_count=" in r["url"] for r in seen if "?" in r["url"])


def test_results_without_a_time_take_the_time_of_their_fetched_diagnostic_report(engine, make_app):
    """Evaluated the day after pat2's report (2011-03-03): at a later opening the result would be history."""
    client = make_app(
        datetime(2011, 3, 4, tzinfo=UTC), fhir_deadline_ms=ROOMY_DEADLINE_MS, fhir_read_timeout_ms=ROOMY_DEADLINE_MS
    ).test_client()
    response = client.post("/cds-services/cytopenia-review", json=_request(engine, "pat2", "t-pat2"))
    assert response.status_code == 200
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    assert any(s.startswith("Neutropenia: ANC 0.9 (CTCAE v5 grade 3") for s in summaries), summaries


def test_patient_unknown_to_the_fhir_server_is_412(engine, client):
    response = client.post("/cds-services/cytopenia-review", json=_request(engine, "nobody", "t-nobody"))
    assert response.status_code == 412
    text = response.get_json()["issue"][0]["details"]["text"]
    assert "'patient'" in text and "HTTP 404" in text


def test_neither_token_nor_patient_id_is_logged(engine, client, caplog):
    token = f"secret-{uuid.uuid4()}"
    caplog.set_level(logging.DEBUG)
    client.post("/cds-services/cytopenia-review", json=_request(engine, "pat2", token))
    client.post("/cds-services/cytopenia-review", json=_request(engine, "nobody-logged", token))
    assert token not in caplog.text
    assert "pat2" not in caplog.text and "nobody-logged" not in caplog.text


def test_the_engine_holds_a_chart_as_a_browser_client_reads_it(engine):
    """What a Sandbox user's chart holds (medications, encounters, allergies, reports), read as the
    Sandbox reads it: /metadata first, then searches by POST _search, from another origin."""
    import requests

    allergic = load_fixture("synthea-r4/Ali_Herman_75c71918-f07f-4492-af1a-ce006a1e8aaf.json")
    engine.load(allergic)
    ali = next(e["resource"]["id"] for e in allergic["entry"] if e["resource"]["resourceType"] == "Patient")
    assert requests.get(f"{engine.base}/metadata", timeout=10).json()["fhirVersion"] == "4.0.1"
    for resource_type, patient in [
        ("MedicationRequest", WHITNEY),
        ("Encounter", WHITNEY),
        ("DiagnosticReport", WHITNEY),
        ("AllergyIntolerance", ali),
    ]:
        response = requests.post(
            f"{engine.base}/{resource_type}/_search",
            data={"patient": patient},
            headers={"Origin": "http://localhost:8095"},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:300]
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.json()["entry"], resource_type
