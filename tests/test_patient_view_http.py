"""patient-view through the Flask app: discovery, a graded card, and errors as OperationOutcome."""

from __future__ import annotations

import json

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
