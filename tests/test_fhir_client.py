"""The FHIR client's own logic (redirects, statuses, FHIR JSON, paging, limits) against a fake transport.

The transport's guards (address, deadline, size) meet a real misbehaving server in test_fhir_faults.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson
import pytest

from cds_service.data_access.fhir_client import follow_pages, for_this_query, get_json
from cds_service.data_access.fhir_errors import NotFhir, Redirected, ServerError, TimedOut, TokenRefused
from cds_service.data_access.fhir_trust import FhirServer
from cds_service.data_access.transport import Answer, Limits

BASE = "https://ehr.example/fhir"
SERVER = FhirServer(BASE, token="secret-token")


def limits(**overrides) -> Limits:
    values = dict(
        deadline=time.monotonic() + 5, deadline_ms=5000, connect_s=1, read_s=1, pages=5, entries=1000, bytes=1 << 20
    )
    return Limits(**{**values, **overrides})


def fhir(document: dict, status: int = 200) -> Answer:
    return Answer(status, "application/fhir+json", None, orjson.dumps(document))


def bundle(*resources: dict, next_url: str | None = None) -> Answer:
    document: dict = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}
    if next_url:
        document["link"] = [{"relation": "next", "url": next_url}]
    return fhir(document)


class FakeTransport:
    """Answers by URL, and remembers what was asked with which headers."""

    def __init__(self, answers: Mapping[str, Answer | Exception]):
        self.answers, self.asked = answers, []

    def get(self, url: str, headers: Mapping[str, str], limits: Limits, budget: int) -> Answer:
        self.asked.append((url, dict(headers)))
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_same_origin_redirect_is_followed_with_the_token():
    transport = FakeTransport(
        {
            f"{BASE}/Patient/1": Answer(302, location="/fhir/Patient/1b"),
            f"{BASE}/Patient/1b": fhir({"resourceType": "Patient"}),
        }
    )
    document, _ = get_json(SERVER, f"{BASE}/Patient/1", limits(), transport, 1 << 20)
    assert document == {"resourceType": "Patient"}
    assert [headers["Authorization"] for _, headers in transport.asked] == ["Bearer secret-token"] * 2


def test_a_redirect_to_another_host_is_not_followed_and_the_token_stays_home():
    transport = FakeTransport({f"{BASE}/Patient/1": Answer(302, location="https://elsewhere.example/x")})
    with pytest.raises(Redirected, match="another host"):
        get_json(SERVER, f"{BASE}/Patient/1", limits(), transport, 1 << 20)
    assert len(transport.asked) == 1


@pytest.mark.parametrize(
    ("answer", "error", "said"),
    [
        (fhir({"resourceType": "OperationOutcome"}, 401), TokenRefused, "HTTP 401: the access token was refused"),
        (
            fhir(
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "details": {"text": "db down"}}]},
                500,
            ),
            ServerError,
            "HTTP 500: db down",
        ),
        (Answer(200, "text/html", None, b"<html>"), NotFhir, "text/html, not FHIR JSON"),
        (Answer(200, "application/fhir+json", None, b"{"), NotFhir, "malformed JSON"),
        (Answer(200, "application/json", None, b"[1]"), NotFhir, "not a FHIR resource"),
    ],
)
def test_each_failure_is_its_own_type_with_one_message(answer, error, said):
    with pytest.raises(error, match=said) as raised:
        get_json(SERVER, f"{BASE}/Patient/1", limits(), FakeTransport({f"{BASE}/Patient/1": answer}), 1 << 20)
    assert raised.value.reason == error.reason


def test_a_timeout_says_the_deadline_whoever_noticed_it():
    transport = FakeTransport({f"{BASE}/Observation": TimedOut(450)})
    with pytest.raises(TimedOut) as raised:
        follow_pages(SERVER, f"{BASE}/Observation", limits(), transport)
    assert str(raised.value) == "not answered in time (deadline 450 ms)" == str(TimedOut(450))
    assert raised.value.reason == "timeout"


def test_pages_are_followed_on_the_same_server_up_to_the_page_limit():
    answers = {
        f"{BASE}/Observation?page={n}": bundle(
            {"resourceType": "Observation", "id": str(n)}, next_url=f"{BASE}/Observation?page={n + 1}"
        )
        for n in range(10)
    }
    pages = follow_pages(SERVER, f"{BASE}/Observation?page=0", limits(pages=3), FakeTransport(answers))
    assert [r["id"] for r in pages.resources] == ["0", "1", "2"]
    assert pages.incomplete == "more than 3 pages of results; later pages were not read"


def test_a_next_link_to_another_host_ends_paging_and_says_so():
    answers = {
        f"{BASE}/Condition": bundle(
            {"resourceType": "Condition", "id": "c1"}, next_url="https://elsewhere.example/next"
        )
    }
    pages = follow_pages(SERVER, f"{BASE}/Condition", limits(), FakeTransport(answers))
    assert [r["id"] for r in pages.resources] == ["c1"]
    assert "another host" in pages.incomplete


def test_an_error_outcome_inside_a_200_bundle_is_a_failure_not_no_data():
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "details": {"text": "too costly"}}]}
    with pytest.raises(ServerError, match="too costly"):
        follow_pages(SERVER, f"{BASE}/Observation", limits(), FakeTransport({f"{BASE}/Observation": bundle(outcome)}))


def test_only_what_the_query_asked_for_is_kept():
    mine = {
        "resourceType": "Observation",
        "id": "1",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
    }
    other_patient = {**mine, "id": "2", "subject": {"reference": "Patient/p2"}}
    other_code = {**mine, "id": "3", "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}}
    kept = for_this_query(
        (mine, other_patient, other_code, {"resourceType": "Condition"}),
        "Observation?patient=p1&code=http://loinc.org|751-8",
    )
    assert [r["id"] for r in kept] == ["1"]
