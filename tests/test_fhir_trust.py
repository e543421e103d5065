"""Which FHIR servers get our queries and the EHR's token, and which prefetch templates we may declare."""

from __future__ import annotations

import socket

import pytest

from cds_service import hooks
from cds_service.auth import Caller
from cds_service.config import Settings
from cds_service.data_access.fhir_trust import Refused, trusted_server
from cds_service.data_access.gather import FhirAccess, RequiredDataUnavailable, gather
from cds_service.data_access.templates import UnfilledToken, fill, template_problems
from cds_service.hooks.cytopenia_review import SERVICE

EHR = "https://fhir.hospital.example/r4"
TOKEN = {"access_token": "t0ken", "token_type": "Bearer", "expires_in": 60, "scope": "patient/*.read", "subject": "ehr"}
PRODUCTION = Settings(fhir_server_allowlist=[EHR])
CALLER = Caller(issuer="https://ehr.example")


@pytest.mark.parametrize("service", hooks.SERVICES, ids=lambda s: s.id)
def test_declared_templates_use_only_cds_hooks_2_tokens_and_the_recommended_subset(service):
    for template in service.prefetch:
        assert template_problems(service.hook, template.query) == [], template.key
        assert "_count=" in template.query or "?" not in template.query, f"{template.key} must bound its results"


@pytest.mark.parametrize(
    "query, problem",
    [
        ("Observation?patient={{context.patientId}}", ""),
        ("Observation?patient={{Patient.id}}", "not a CDS Hooks 2.0 token"),
        ("Observation?patient={{context.draftOrders}}", "not a CDS Hooks 2.0 token"),
        ("Observation?patient={{context.patientId}}&code:text=anc", "outside the recommended subset"),
        ("Observation?patient={{context.patientId}}&date=gt{{today() - 90 days}}", "not a CDS Hooks 2.0 token"),
        ("Observation", ""),
    ],
)
def test_template_checker_tells_what_is_outside_the_spec(query, problem):
    found = " ".join(template_problems("patient-view", query))
    assert (problem in found) if problem else found == ""


def test_tokens_are_filled_only_with_fhir_ids():
    context = {"patientId": "abc-1", "userId": "Practitioner/u.9", "encounterId": "e1&_count=99999"}
    assert fill("Patient/{{context.patientId}}", context) == "Patient/abc-1"
    assert fill("Practitioner/{{userPractitionerId}}", context) == "Practitioner/u.9"
    with pytest.raises(UnfilledToken):
        fill("Encounter/{{context.encounterId}}", context)
    with pytest.raises(UnfilledToken):
        fill("Patient/{{userPatientId}}", context)


@pytest.mark.parametrize(
    "settings, caller, fhir_server, refusal",
    [
        (PRODUCTION, CALLER, "http://fhir.hospital.example/r4", "https"),
        (PRODUCTION, CALLER, "https://attacker.example/r4", "not a FHIR server configured"),
        (Settings(), CALLER, EHR, "no FHIR server is configured"),
        (
            PRODUCTION,
            Caller(issuer="x", fhir_servers=("https://other.example/fhir",)),
            EHR,
            "not a FHIR server configured",
        ),
        (PRODUCTION, CALLER, "https://user:pw@fhir.hospital.example/r4", "not an http"),
    ],
)
def test_fhir_server_outside_the_clients_binding_is_refused(settings, caller, fhir_server, refusal):
    with pytest.raises(Refused, match=refusal):
        trusted_server({"fhirServer": fhir_server, "fhirAuthorization": TOKEN}, settings, caller)


def test_client_binding_takes_precedence_over_the_allowlist():
    caller = Caller(issuer="x", fhir_servers=("https://other.example/fhir",))
    server = trusted_server(
        {"fhirServer": "https://other.example/fhir/", "fhirAuthorization": TOKEN}, PRODUCTION, caller
    )
    assert server.base == "https://other.example/fhir" and "t0ken" not in repr(server)


def test_loopback_address_is_refused_outside_dev_mode(example_request):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        base = f"https://127.0.0.1:{listener.getsockname()[1]}/fhir"
        del example_request["prefetch"]["bloodCounts"]
        example_request.update(fhirServer=base, fhirAuthorization=TOKEN)
        with pytest.raises(RequiredDataUnavailable) as raised:
            settings = Settings(fhir_server_allowlist=[base], fhir_deadline_ms=2000)
            gather(SERVICE.prefetch, example_request, settings, CALLER, FhirAccess.for_settings(settings))
    assert "private, loopback or link-local" in raised.value.message
