"""Each CDS Hooks prefetch state per key, and what the service does with it (incl. 412)."""

from __future__ import annotations

import copy

import pytest

from cds_service.auth import Caller
from cds_service.config import Settings
from cds_service.data_access.gather import FhirAccess, RequiredDataUnavailable, gather
from cds_service.hooks.cytopenia_review import SERVICE
from tests.conftest import assert_valid
from tests.misbehaving_fhir import fhir, serving

DEV = Settings(dev=True)
DEV_CALLER = Caller(issuer=None, dev=True)
OPERATION_OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "details": {"text": "lab system timed out"}}],
}


def gathered(request, settings=DEV):
    return gather(SERVICE.prefetch, request, settings, DEV_CALLER, FhirAccess.for_settings(settings))


def problems(data):
    return " | ".join(f"{i.source}: {i.problem}" for i in data.issues)


def test_resource_and_bundles_with_entries_are_data(example_request):
    data = gathered(example_request)
    assert data.first("patient", "Patient")["id"] == "example-neutropenia"
    assert len(data.by_key["bloodCounts"]) == 12
    assert data.by_key["conditions"] == () and data.issues == ()


def test_null_means_no_data_not_an_error(example_request):
    example_request["prefetch"]["conditions"] = None
    data = gathered(example_request)
    assert data.by_key["conditions"] == () and data.issues == ()


def test_absent_optional_key_without_fhir_server_is_named_as_missing(example_request):
    del example_request["prefetch"]["conditions"]
    data = gathered(example_request)
    assert "conditions" not in data.by_key
    assert "'conditions'" in problems(data) and "was not prefetched" in problems(data)
    assert "no fhirServer" in problems(data)


def test_absent_required_key_without_fhir_server_is_412_naming_it(example_request):
    del example_request["prefetch"]["bloodCounts"]
    with pytest.raises(RequiredDataUnavailable) as raised:
        gathered(example_request)
    assert raised.value.expression == ["prefetch.bloodCounts"]
    assert "'bloodCounts'" in raised.value.message and "no fhirServer" in raised.value.message


@pytest.mark.parametrize(
    "failed",
    [
        OPERATION_OUTCOME,
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": OPERATION_OUTCOME, "search": {"mode": "outcome"}}],
        },
    ],
)
def test_operation_outcome_is_unavailable_never_no_data(example_request, failed):
    example_request["prefetch"]["conditions"] = failed
    data = gathered(example_request)
    assert "conditions" not in data.by_key
    assert "failed in the EHR" in problems(data) and "lab system timed out" in problems(data)


def test_search_warnings_are_not_errors(example_request):
    note = {"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational"}]}
    example_request["prefetch"]["conditions"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": note, "search": {"mode": "outcome"}}],
    }
    data = gathered(example_request)
    assert data.by_key["conditions"] == () and data.issues == ()


def test_failed_required_key_is_412_through_http(client, example_request):
    example_request["prefetch"]["bloodCounts"] = OPERATION_OUTCOME
    response = client.post("/cds-services/cytopenia-review", json=example_request)
    assert response.status_code == 412
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "incomplete"
    assert "'bloodCounts'" in outcome["issue"][0]["details"]["text"]
    assert outcome["issue"][0]["expression"] == ["prefetch.bloodCounts"]


def _page_two(patient: str) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "anc-older",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "effectiveDateTime": "2026-11-01T08:00:00Z",
                    "valueQuantity": {
                        "value": 1.1,
                        "unit": "10*3/uL",
                        "system": "http://unitsofmeasure.org",
                        "code": "10*3/uL",
                    },
                }
            }
        ],
    }


def test_paginated_prefetch_is_followed_on_the_fhir_server(example_request):
    with serving({"Observation": fhir(_page_two("example-neutropenia"))}) as (base, seen):
        example_request["fhirServer"] = base
        example_request["fhirAuthorization"] = {
            "access_token": "tok-paging",
            "token_type": "Bearer",
            "expires_in": 60,
            "scope": "patient/*.read",
            "subject": "ehr",
        }
        example_request["prefetch"]["bloodCounts"]["link"] = [{"relation": "next", "url": f"{base}/Observation?page=2"}]
        data = gathered(example_request)
    assert len(data.by_key["bloodCounts"]) == 13 and data.by_key["bloodCounts"][-1]["id"] == "anc-older"
    assert seen == [{"path": "/Observation?page=2", "authorization": "Bearer tok-paging"}]


def test_paginated_prefetch_without_fhir_server_keeps_the_first_page_and_says_so(example_request):
    example_request["prefetch"]["bloodCounts"]["link"] = [
        {"relation": "next", "url": "https://ehr.example/fhir/Observation?page=2"}
    ]
    data = gathered(example_request)
    assert len(data.by_key["bloodCounts"]) == 12
    assert "only the first page was sent" in problems(data)


def test_next_link_to_another_host_is_not_followed(example_request):
    with serving({"Observation": fhir(_page_two("example-neutropenia"))}) as (base, seen):
        example_request["fhirServer"] = base
        example_request["prefetch"]["bloodCounts"]["link"] = [
            {"relation": "next", "url": "https://elsewhere.example/Observation?page=2"}
        ]
        data = gathered(example_request)
    assert seen == []
    assert "another host" in problems(data) and len(data.by_key["bloodCounts"]) == 12


def test_missing_optional_data_is_said_on_the_card(client, example_request):
    request = copy.deepcopy(example_request)
    request["prefetch"]["conditions"] = OPERATION_OUTCOME
    response = client.post("/cds-services/cytopenia-review", json=request)
    assert response.status_code == 200
    document = response.get_json()
    assert_valid("response", document)
    [card] = document["cards"]
    assert "prefetch 'conditions'" in card["detail"] and "lab system timed out" in card["detail"]
