"""patient-view through the Flask app: discovery, a graded card, and errors as OperationOutcome."""

from __future__ import annotations

import json

import pytest

from tests.conftest import assert_valid


def test_discovery_lists_the_cytopenia_review_service(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    document = response.get_json()
    assert_valid("discovery", document)
    service = next(s for s in document["services"] if s["id"] == "cytopenia-review")
    assert service["hook"] == "patient-view"
    assert "_sort=-date" in service["prefetch"]["bloodCounts"]


def test_example_request_gets_one_pancytopenia_card_with_its_graded_lineages(client, example_request):
    response = client.post("/cds-services/cytopenia-review", json=example_request)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    [card] = document["cards"]
    assert card["summary"].startswith("Pancytopenia: ANC 0.4, Hb 9.6 g/dL, platelets 68 — watch for fever")
    assert card["indicator"] == "warning"
    assert "| ANC | 0.4 ×10⁹/L | 4 | Observation/anc-20261119 |" in card["detail"]
    assert "Afebrile over the last 24 h (latest 37.1 °C at 2026-11-20 08:00 UTC)" in card["detail"]


def test_unknown_service_is_404_operation_outcome(client, example_request):
    response = client.post("/cds-services/nope", json=example_request)
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_malformed_json_is_400_operation_outcome(client):
    response = client.post("/cds-services/cytopenia-review", data=b"{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert "not valid JSON" in body["issue"][0]["details"]["text"]


def test_missing_required_field_names_the_field(client, example_request):
    del example_request["hookInstance"]
    response = client.post(
        "/cds-services/cytopenia-review", data=json.dumps(example_request), content_type="application/json"
    )
    assert response.status_code == 400
    assert "hookInstance" in response.get_json()["issue"][0]["details"]["text"]


def test_unread_medications_are_named_on_the_card_without_a_data_gap_card(client, example_request):
    """Context the EHR did not send is said where it matters; it does not make the counts 'unusable'."""
    del example_request["prefetch"]["medications"]
    document = client.post("/cds-services/cytopenia-review", json=example_request).get_json()
    assert_valid("response", document)
    summaries = [c["summary"] for c in document["cards"]]
    assert not any(s.startswith("Blood counts partly unusable") for s in summaries), summaries
    [pancytopenia] = document["cards"]
    assert "**Not checked:** active medications \\(MedicationRequests could not be read\\)" in pancytopenia["detail"]


@pytest.mark.parametrize(
    "coding",
    [
        [{"system": "http://loinc.org", "code": ["751-8"]}],
        [{"system": {"url": "http://loinc.org"}, "code": "751-8"}],
        [{"system": "http://loinc.org", "code": "not-read"}, {"system": "http://loinc.org", "code": {"751-8": 1}}],
    ],
)
def test_a_code_sent_as_a_list_or_an_object_is_not_read_and_the_chart_still_is(make_app, example_request, coding):
    """Only text can be a code: such a result is not read (it cannot be one the service knows), never a 500."""
    client = make_app(repeat_window_hours=0).test_client()
    expected = client.post("/cds-services/cytopenia-review", json=example_request).get_json()["cards"]
    odd = {
        "resourceType": "Observation",
        "id": "odd-code",
        "status": "final",
        "subject": {"reference": f"Patient/{example_request['context']['patientId']}"},
        "effectiveDateTime": "2026-11-19T08:00:00Z",
        "code": {"coding": coding},
        "valueQuantity": {"value": 0.1, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"},
    }
    example_request["prefetch"]["bloodCounts"]["entry"].append({"resource": odd})
    response = client.post("/cds-services/cytopenia-review", json=example_request)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [c["summary"] for c in response.get_json()["cards"]] == [c["summary"] for c in expected]
