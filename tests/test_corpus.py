"""Every real-world patient in ../shared/fixtures through patient-view, evaluated as of its last CBC.

Synthea R4 (30 patients with CBCs, 2 without), the official FHIR R4 examples. Each bundle is parsed
once per session; the prefetch is what an EHR would send: the Patient, a searchset of the patient's
Observations and one of its Conditions.
"""

from __future__ import annotations

import csv
import uuid
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import orjson
import pytest

from cds_service.request import resources_in
from fhir_mappings.times import parse_datetime
from tests.conftest import FIXTURES, assert_valid

pytestmark = pytest.mark.corpus
URL = "/cds-services/cytopenia-review"
CBC_CODES = {"6690-2", "718-7", "777-3", "26464-8", "26515-7", "751-8"}
WBC = "6690-2"


@cache
def index() -> tuple[dict[str, str], ...]:
    with (FIXTURES / "index.csv").open(encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


def synthea_rows(category_prefix: str = "") -> list[dict[str, str]]:
    return [
        r
        for r in index()
        if r["file"].startswith(("smart-r4-synthea/", "synthea-covid")) and r["category"].startswith(category_prefix)
    ]


def bundle_path(row: dict[str, str]) -> Path:
    folder = "synthea-r4" if row["file"].startswith("smart-r4-synthea/") else "synthea-r4-no-cbc"
    return FIXTURES / folder / Path(row["file"]).name


@cache
def resources(path: Path) -> tuple[dict, ...]:
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: set CYTOPENIA_FIXTURES to the shared fixtures folder")
    return tuple(resources_in(orjson.loads(path.read_bytes())))


def searchset(items) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in items]}


def request(patient: dict, observations, conditions=(), medications=()) -> dict:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/corpus", "patientId": patient["id"]},
        "prefetch": {
            "patient": patient,
            "bloodCounts": searchset(observations),
            "conditions": searchset(conditions),
            "medications": searchset(medications),
        },
    }


def codes(observation: dict) -> set[str]:
    return {c.get("code") for c in observation.get("code", {}).get("coding", ())}


def of_type(items, kind: str) -> list[dict]:
    return [r for r in items if r.get("resourceType") == kind]


def synthea_request(row: dict[str, str]) -> dict:
    items = resources(bundle_path(row))
    [patient] = of_type(items, "Patient")
    assert patient["id"] == row["patient_resource_id"]
    return request(
        patient, of_type(items, "Observation"), of_type(items, "Condition"), of_type(items, "MedicationRequest")
    )


def cbc_times(row: dict[str, str], code_set=CBC_CODES) -> list[tuple[datetime, dict]]:
    items = resources(bundle_path(row))
    return sorted(
        ((parse_datetime(o["effectiveDateTime"]), o) for o in of_type(items, "Observation") if codes(o) & code_set),
        key=lambda pair: pair[0],
    )


def evaluate(make_app, body: dict, as_of: datetime) -> list[dict]:
    response = make_app(as_of=as_of).test_client().post(URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


def starting(cards: list[dict], prefix: str) -> dict:
    matches = [c for c in cards if c["summary"].startswith(prefix)]
    assert matches, [c["summary"] for c in cards]
    return matches[0]


@pytest.mark.parametrize(
    "row", [r for r in synthea_rows() if not r["category"].startswith("H_")], ids=lambda r: r["name"]
)
def test_every_synthea_patient_as_of_its_last_cbc_gets_a_valid_answer(make_app, row):
    last_cbc = cbc_times(row)[-1][0]
    for card in evaluate(make_app, synthea_request(row), last_cbc):
        assert len(card["summary"]) <= 139


def ctcae_leukopenia_grade(wbc: float) -> int:
    """CTCAE v5.0 White blood cell decreased, grades 2-4 (grade 1 needs a lab LLN Synthea does not send)."""
    return 4 if wbc < 1.0 else 3 if wbc < 2.0 else 2


@pytest.mark.parametrize("row", synthea_rows("A_"), ids=lambda r: r["name"])
def test_chemotherapy_patient_at_wbc_nadir_gets_the_ctcae_leukopenia_grade(make_app, row):
    nadir_time, nadir = min(cbc_times(row, {WBC}), key=lambda pair: pair[1]["valueQuantity"]["value"])
    nadir_value = nadir["valueQuantity"]["value"]
    assert nadir_value == pytest.approx(float(row["min_wbc_10e3_uL"]), abs=0.005)
    leukopenia = starting(evaluate(make_app, synthea_request(row), nadir_time), "Leukopenia")
    assert f"CTCAE v5 grade {ctcae_leukopenia_grade(nadir_value)}" in leukopenia["summary"]
    assert nadir["id"] in leukopenia["detail"]


def test_whitney_ortiz_wbc_0_52_is_grade_4_leukopenia(make_app):
    [row] = [r for r in synthea_rows("A_") if r["name"] == "Whitney Ortiz"]
    nadir_time, _ = min(cbc_times(row, {WBC}), key=lambda pair: pair[1]["valueQuantity"]["value"])
    leukopenia = starting(evaluate(make_app, synthea_request(row), nadir_time), "Leukopenia")
    assert leukopenia["summary"].startswith("Leukopenia: WBC 0.52 (CTCAE v5 grade 4)")
    assert leukopenia["indicator"] == "warning"


NEWBORN = "Luigi Wiegand"  # CBC on his day of birth: WHO has no haemoglobin cut-off below 6 months (issue #12)


@pytest.mark.parametrize("row", [r for r in synthea_rows("F_") if r["name"] != NEWBORN], ids=lambda r: r["name"])
def test_normal_controls_get_no_card(make_app, row):
    assert evaluate(make_app, synthea_request(row), cbc_times(row)[-1][0]) == []


def test_a_newborn_haemoglobin_without_a_lab_range_is_said_not_graded(make_app):
    [row] = [r for r in synthea_rows("F_") if r["name"] == NEWBORN]
    [card] = evaluate(make_app, synthea_request(row), cbc_times(row)[-1][0])
    assert card["indicator"] == "info"
    assert card["summary"] == "Haemoglobin not graded: no WHO 2024 cut-off below 6 months and no lab reference range"


@pytest.mark.parametrize("row", synthea_rows("H_"), ids=lambda r: r["name"])
def test_febrile_patients_without_any_cbc_get_the_data_gap_card_never_normal(make_app, row):
    """These COVID-19 patients have a fever on record, which calls for counts: the gap is said, as information."""
    items = resources(bundle_path(row))
    last = max(
        parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900") for o in of_type(items, "Observation")
    )
    [card] = evaluate(make_app, synthea_request(row), last)
    assert card["summary"] == "Cytopenia not assessed: no usable blood count — order a CBC with differential"
    assert card["indicator"] == "info" and "Counts are expected here: fever" in card["detail"]


@pytest.mark.parametrize("row", synthea_rows("H_"), ids=lambda r: r["name"])
def test_patients_without_any_cbc_and_nothing_calling_for_counts_get_no_card(make_app, row):
    items = resources(bundle_path(row))
    last = max(
        parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900") for o in of_type(items, "Observation")
    )
    afebrile = [o for o in of_type(items, "Observation") if not codes(o) & {"8310-5", "8331-1"}]
    [patient] = of_type(items, "Patient")
    assert evaluate(make_app, request(patient, afebrile, of_type(items, "Condition")), last) == []


@pytest.mark.parametrize("row", synthea_rows("A_")[:3], ids=lambda r: r["name"])
def test_an_old_low_count_at_a_later_opening_is_history_never_a_warning(make_app, row):
    nadir_time, _ = min(cbc_times(row, {WBC}), key=lambda pair: pair[1]["valueQuantity"]["value"])
    later = cbc_times(row)[-1][0] + timedelta(days=365)
    for card in evaluate(make_app, synthea_request(row), later):
        assert card["indicator"] == "info", card["summary"]


def hl7(name: str) -> tuple[dict, ...]:
    return resources(FIXTURES / "hl7-r4-examples" / name)


@pytest.mark.parametrize("bundle", ["Bundle-101.json", "Bundle-ghp.json"])
def test_fhir_example_pat2_anc_0_9_is_grade_3_neutropenia(make_app, bundle):
    [patient] = hl7("Patient-pat2.json")
    observations = [r for r in hl7(bundle) if r.get("resourceType") in ("Observation", "DiagnosticReport")]
    as_of = max(parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900") for o in observations)
    cards = evaluate(make_app, request(patient, observations), as_of)
    neutropenia = starting(cards, "Neutropenia")
    assert neutropenia["summary"].startswith("Neutropenia: ANC 0.9 (CTCAE v5 grade 3, moderate)")
    assert not any(c["summary"].startswith("Anaemia") for c in cards)  # Hb 176 g/L is 17.6 g/dL


def test_fhir_example_f001_hb_7_2_is_grade_3_anaemia(make_app):
    [patient] = hl7("Patient-f001.json")
    [observation] = hl7("Observation-f005.json")
    as_of = parse_datetime(observation.get("effectivePeriod", {}).get("start") or observation.get("effectiveDateTime"))
    anaemia = starting(evaluate(make_app, request(patient, [observation]), as_of), "Anaemia")
    assert "Hb 7.2 g/dL" in anaemia["summary"] and "CTCAE v5 grade 3" in anaemia["summary"]


def test_fhir_example_report_without_subject_is_said_never_used(make_app):
    observations = hl7("Bundle-report.json")
    patient = {"resourceType": "Patient", "id": "unknown-subject"}
    as_of = max(parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900") for o in observations)
    [card] = evaluate(make_app, request(patient, observations), as_of)
    assert card["summary"] == "Cytopenia not assessed: no usable blood count — check the results not used"
    assert "not attributed to this patient" in card["detail"]
