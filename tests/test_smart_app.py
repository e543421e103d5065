"""The SMART app's endpoint and pages without a browser: what it computes (by the hooks' own rules), who
may call it (SMART access token by introspection; each refusal), and the card links that open it."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import pytest

from cds_service.app import create_app
from cds_service.config import ConfigError, Settings
from cds_service.smart_app.reads import app_reads, scopes
from tests.conftest import AS_OF
from tests.fn_vignettes import (
    AML,
    PID,
    RXNORM,
    SOLID_TUMOUR,
    anc,
    at,
    bp,
    encounter,
    medication,
    observation,
    request,
    temp,
)
from tests.smart_ehr import CLIENT_ID, RESOURCE_SERVER, Served, SmartEhr

STATIC = Path(__file__).resolve().parent.parent / "cds_service" / "smart_app" / "static"
VENDORED = {
    "vendor/fhir-client-2.6.3.pure.min.js": "658dec434e308a6ba682158f1e94bfaa0f600bb500e78443369bfe7818133d90",
    "vendor/uPlot-1.6.32.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
    "vendor/uPlot-1.6.32.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
}
PATIENT = {"resourceType": "Patient", "id": PID, "birthDate": "1970-01-01", "gender": "female"}


def _view(client, *resources, patient=PATIENT, answers=None, not_read=(), token=None):
    body = {"patient": patient, "resources": list(resources), "notRead": list(not_read)}
    if answers is not None:
        body["answers"] = answers
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/app/api/patient-view", json=body, headers=headers)


def _series(view: dict, analyte: str) -> dict:
    return next(s for s in view["series"] if s["analyte"] == analyte)


# ---- the pages and the vendored libraries -----------------------------------------------------


def test_vendored_libraries_are_the_pinned_npm_files_with_their_licences():
    readme = (STATIC / "vendor" / "README.md").read_text(encoding="utf-8")
    for name, digest in VENDORED.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
        assert digest in readme
    assert "Apache" in (STATIC / "vendor" / "fhirclient-LICENSE.txt").read_text(encoding="utf-8")
    assert "MIT" in (STATIC / "vendor" / "uPlot-LICENSE.txt").read_text(encoding="utf-8")


def test_pages_load_only_the_services_own_scripts_under_a_strict_policy(client):
    for page in ("launch.html", "index.html"):
        html = (STATIC / page).read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), f"inline script in {page}"
        for source in re.findall(r'(?:src|href)="([^"]+)"', html):
            if not source.startswith(("data:", "#")):
                assert (STATIC / source).is_file(), source
        response = client.get(f"/app/{page}")
        assert response.status_code == 200
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert client.get("/app/").status_code == 200
    assert client.get("/app/../pyproject.toml").status_code == 404


def test_the_scopes_asked_for_are_exactly_what_the_app_reads(client):
    config = client.get("/app/config.json").get_json()
    read = {kind for kind, _ in app_reads()}
    assert set(config["scope"].split()) == {"launch", "patient/Patient.rs", *(f"patient/{k}.rs" for k in read)}
    assert read == {
        "Observation",
        "Condition",
        "Encounter",
        "MedicationRequest",
        "MedicationAdministration",
        "ServiceRequest",
    }
    assert config["scope"] == " ".join(scopes())
    assert config["clientId"] == "cytopenia-cds" and config["redirectUri"] == "index.html"


# ---- what the endpoint computes ----------------------------------------------------------------


def test_series_bands_nadir_and_preliminary_points(client):
    final = [anc(1.2, 72), anc(0.4, 48), anc(1.0, 24)]
    preliminary = anc(0.3, 2) | {"status": "preliminary"}
    view = _view(client, *final, preliminary).get_json()
    neutrophils = _series(view, "absolute_neutrophil_count")
    points = {(p["value"], p["status"]): p for p in neutrophils["points"]}
    assert points[(0.3, "preliminary")]["gradeLabel"] == "CTCAE v5 grade 4"  # used as the cards use it, and said
    assert points[(1.0, "final")]["gradeLabel"] == "CTCAE v5 grade 2"  # exactly on the grade-3 cut: the milder
    assert points[(0.4, "final")]["gradeLabel"] == "CTCAE v5 grade 4"
    assert neutrophils["nadir"] == {"time": at(120), "value": 0.3, "text": "0.3", "status": "preliminary"}
    assert [b["label"] for b in neutrophils["bands"]] == [
        "CTCAE grade 4 (<0.5 ×10⁹/L)",
        "CTCAE grade 3 (<1 ×10⁹/L)",
        "CTCAE grade 2 (<1.5 ×10⁹/L)",
    ]  # no grade 1 band: the default lower limit (1.5) is the grade 2 cut-off
    assert neutrophils["lowerLimit"]["value"] == 1.5 and "default" in neutrophils["lowerLimit"]["basis"]
    assert not _series(view, "lymphocytes")["recorded"]


def test_mascc_the_record_answers_five_items_and_the_clinician_two():
    """Fever at an outpatient visit, systolic 120, breast cancer, 56 years old: with no burden and no
    dehydration the whole score is known, 26, low risk; severe burden and IV fluids make it 18, high."""
    resources = [
        temp(38.6, 30),
        anc(0.3, 1),
        bp(120),
        SOLID_TUMOUR,
        encounter("AMB", 90),
    ]
    client = _app().test_client()
    patient = PATIENT | {"birthDate": "1970-06-01"}
    unanswered = _view(client, *resources, patient=patient).get_json()["mascc"]
    assert unanswered["score"] is None and unanswered["riskGroup"] is None
    assert (unanswered["low"], unanswered["high"]) == (18, 26)
    low = _view(
        client,
        *resources,
        patient=patient,
        answers={"burdenOfIllness": "none or mild", "dehydrationNeedingIvFluids": False},
    ).get_json()["mascc"]
    assert (low["score"], low["riskGroup"]) == (26, "low risk")
    high = _view(
        client, *resources, patient=patient, answers={"burdenOfIllness": "severe", "dehydrationNeedingIvFluids": True}
    ).get_json()["mascc"]
    assert (high["score"], high["riskGroup"]) == (18, "high risk (not low risk)")
    assert not any(c["applies"] for c in high["caveats"])
    cisne = _view(client, *resources, patient=patient).get_json()["cisne"]
    assert cisne["name"] == "CISNE"  # a stable patient with a solid tumour


def test_mascc_caveats_apply_to_a_child_and_to_a_haematological_malignancy(client):
    child = _view(client, temp(38.6, 30), anc(0.3, 1), patient=PATIENT | {"birthDate": "2016-01-01"}).get_json()
    assert [c["applies"] for c in child["mascc"]["caveats"]] == [True, False]
    assert child["mascc"]["notApplicable"].endswith("not used for a patient under 18 years.")
    assert child["mascc"]["items"] == [] and child["cisne"] is None
    leukaemia = _view(client, temp(38.6, 30), anc(0.3, 1), AML).get_json()["mascc"]
    assert leukaemia["notApplicable"].startswith("acute leukaemia coded")
    assert leukaemia["caveats"][1]["applies"] is True
    assert _view(client, temp(38.6, 30), anc(0.3, 1), AML).get_json()["cisne"] is None


def test_first_hour_shows_what_was_recorded_and_never_reads_absence_as_not_done(client):
    culture = {
        "resourceType": "Observation",
        "id": "culture-1",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "600-7"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(20),
    }
    dose = {
        "resourceType": "MedicationAdministration",
        "id": "dose-1",
        "status": "completed",
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "20481"}], "text": "cefepime 2 g IV"},
        "effectiveDateTime": at(5),
    }
    done = _view(client, temp(38.6, 60), anc(0.3, 1), culture, dose).get_json()["firstHour"]
    assert done["hoursSinceOnset"] == 1.0
    cultures, first_dose = done["items"]
    assert cultures["status"] == "recorded" and "1 of 2 taken" in cultures["evidence"]
    assert first_dose["status"] == "recorded" and "55 min after fever onset" in first_dose["evidence"]
    assert "within 60 min" in first_dose["label"]
    order = medication("29561", "meropenem 1 g IV") | {"authoredOn": at(10)}
    ordered = _view(client, temp(38.6, 60), anc(0.3, 1), order).get_json()["firstHour"]["items"][1]
    assert ordered["status"] == "ordered" and "no administration recorded" in ordered["evidence"]
    unknown = _view(client, temp(38.6, 60), anc(0.3, 1), not_read=["MedicationAdministration"]).get_json()
    assert [i["status"] for i in unknown["firstHour"]["items"]] == ["not recorded", "not read"]
    assert unknown["notRead"] == ["MedicationAdministration"]


def test_bad_requests_get_an_operation_outcome(client):
    assert _view(client, answers={"burdenOfIllness": "a bit"}).status_code == 400
    response = client.post("/app/api/patient-view", json={"resources": []})
    assert response.status_code == 400 and response.get_json()["resourceType"] == "OperationOutcome"
    assert "invalid app request" in response.get_json()["issue"][0]["details"]["text"]
    assert client.post("/app/api/patient-view", data="x", content_type="text/plain").status_code == 415


# ---- who may call it ---------------------------------------------------------------------------


def _app(**settings):
    settings.setdefault("dev", True)
    if not settings["dev"]:
        settings.setdefault("public_base_url", "https://cds.hospital.example")
        settings.setdefault("workers", 1)
        settings.setdefault("clients", [{"issuer": "https://ehr.invalid", "jwks_file": str(_jwks())}])
    return create_app(Settings(database_url="sqlite://", audit_key="test-audit-key", **settings), clock=lambda: AS_OF)


@pytest.fixture
def ehr():
    authority = SmartEhr(fhir_engine="http://127.0.0.1:9", redirect_uri="https://app.invalid/index.html")
    served = Served(authority.app())
    authority.base = served.base
    yield authority
    served.stop()


def _introspecting(ehr: SmartEhr, dev: bool = False, **extra):
    return _app(
        dev=dev,
        smart_app={
            "client_id": CLIENT_ID,
            "introspection_url": f"{ehr.base}/introspect",
            "introspection_client_id": RESOURCE_SERVER[0],
            "introspection_client_secret": RESOURCE_SERVER[1],
        },
        **extra,
    ).test_client()


def _jwks() -> Path:
    return Path(__file__).resolve().parent.parent / "cds_service" / "auth" / "data" / "sandbox-jwks.json"


def test_a_valid_token_for_this_patient_is_served(ehr):
    client = _introspecting(ehr)
    token = ehr.issue_token(PID, "launch patient/Patient.rs patient/Observation.rs")
    response = _view(client, anc(0.4, 2), token=token)
    assert response.status_code == 200, response.get_json()
    assert _view(client, anc(0.4, 2), token=token).status_code == 200
    assert sum(1 for s in ehr.seen if s["endpoint"] == "introspect") == 1  # the answer is cached


@pytest.mark.parametrize(
    "case",
    ["no token", "not bearer", "unknown token", "another client", "no observation scope", "expired"],
)
def test_refusals_are_401_with_the_reason_only_in_the_log(ehr, case, caplog):
    client = _introspecting(ehr)
    token = {
        "no token": None,
        "not bearer": None,
        "unknown token": "not-a-token-the-ehr-issued",
        "another client": ehr.issue_token(PID, "patient/Observation.rs", client_id="another-app"),
        "no observation scope": ehr.issue_token(PID, "launch patient/Patient.rs patient/Observation.write"),
        "expired": ehr.issue_token(PID, "patient/Observation.rs", lifetime=-10),
    }[case]
    headers = {"Authorization": "Basic dXNlcjpwdw=="} if case == "not bearer" else {}
    with caplog.at_level(logging.WARNING):
        if headers:
            response = client.post("/app/api/patient-view", json={"patient": PATIENT, "resources": []}, headers=headers)
        else:
            response = _view(client, anc(0.4, 2), token=token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.get_json()["issue"][0]["details"]["text"] == "authentication required"
    assert "SMART app call refused" in caplog.text
    assert PID not in caplog.text and (token is None or token not in caplog.text)


def test_resources_of_another_patient_are_refused(ehr):
    client = _introspecting(ehr)
    token = ehr.issue_token("someone-else", "patient/Observation.rs")
    response = _view(client, anc(0.4, 2), token=token)
    assert response.status_code == 403
    assert response.get_json()["issue"][0]["expression"] == ["patient.id"]


def test_an_unreachable_introspection_endpoint_is_503_never_a_pass(ehr):
    client = _app(dev=True, smart_app={"client_id": CLIENT_ID, "introspection_url": "http://127.0.0.1:9/introspect"})
    response = _view(client.test_client(), anc(0.4, 2), token="any")
    assert response.status_code == 503


def test_production_without_introspection_refuses_and_dev_without_it_admits(client):
    production = _app(dev=False)
    assert _view(production.test_client(), anc(0.4, 2)).status_code == 401
    assert _view(production.test_client(), anc(0.4, 2), token="t").status_code == 401
    assert _view(client, anc(0.4, 2)).status_code == 200
    assert _view(client, anc(0.4, 2), token="unchecked in development mode").status_code == 200


def test_introspection_must_be_https_outside_dev_mode():
    with pytest.raises(ConfigError, match="https"):
        _app(dev=False, smart_app={"introspection_url": "http://ehr.example/introspect"})


def test_the_endpoint_is_rate_limited_per_launch(ehr):
    client = _introspecting(ehr, rate_limit="2 per minute")
    token = ehr.issue_token(PID, "patient/Observation.rs")
    statuses = [_view(client, anc(0.4, 2), token=token).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    other = ehr.issue_token(PID, "patient/Observation.rs")
    assert _view(client, anc(0.4, 2), token=other).status_code == 200


# ---- the cards that open it --------------------------------------------------------------------


def test_febrile_neutropenia_and_neutropenia_cards_carry_the_smart_link(client):
    fn = client.post("/cds-services/febrile-neutropenia", json=request(temp(38.6, 30), anc(0.3, 1))).get_json()
    for card in fn["cards"]:
        (link,) = [link for link in card["links"] if link["type"] == "smart"]  # beside the guideline links
        assert link["type"] == "smart" and link["url"] == "http://localhost/app/launch.html"
        assert json.loads(link["appContext"]) == {"finding": "febrile_neutropenia"}
    review = _review_request(observation("751-8", 0.4, "10*9/L", 60), observation("718-7", 9.5, "g/dL", 60))
    cards = client.post("/cds-services/cytopenia-review", json=review).get_json()["cards"]
    linked = {
        c["summary"].split(":")[0]: [
            json.loads(link["appContext"]) for link in c.get("links", []) if link["type"] == "smart"
        ]
        for c in cards
    }
    assert linked["Neutropenia"] == [{"finding": "neutropenia"}]
    assert linked["Anaemia"] == []


def test_the_link_uses_the_public_base_url_when_configured():
    client = _app(public_base_url="https://cds.hospital.example").test_client()
    fn = client.post("/cds-services/febrile-neutropenia", json=request(temp(38.6, 30), anc(0.3, 1))).get_json()
    assert fn["cards"][0]["links"][-1]["url"] == "https://cds.hospital.example/app/launch.html"


def _review_request(*observations):
    return {
        "hook": "patient-view",
        "hookInstance": "6f1c2d1e-0000-4000-8000-000000000017",
        "context": {"userId": "Practitioner/example", "patientId": PID},
        "prefetch": {
            "patient": PATIENT,
            "bloodCounts": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": o} for o in observations],
            },
            "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
            "medications": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        },
    }
