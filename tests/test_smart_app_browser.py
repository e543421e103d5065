"""End to end, the way an EHR launches it: a card's `smart` link -> EHR launch -> authorize (PKCE S256)
-> token with patient and appContext -> FHIR reads through the SMART client -> the service's rules ->
chart and MASCC in headless Chromium, for a named Synthea patient (Granville Crooks).

What is right is computed here from the fixture itself (its WBC results, their minimum, the CTCAE and
MASCC tables), never taken from the endpoint's answer. `make test` installs playwright-core
(tests/browser) and, as root on a machine without it, Debian's chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from cds_service.app import create_app
from cds_service.clinical.knowledge import ctcae_cuts, mascc_points, risk_cutoff
from cds_service.config import Settings
from cds_service.smart_app.reads import app_reads
from fhir_mappings import Analyte
from tests.conftest import AS_OF, load_fixture
from tests.fhir_engine import FhirEngine
from tests.smart_ehr import CLIENT_ID, RESOURCE_SERVER, Served, SmartEhr

pytestmark = pytest.mark.server

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PATIENT_FILE = "synthea-r4/Granville_Crooks_271033b4-ab72-469d-87e2-bbd6c6ecec1f.json"
# What the EHR holds for this patient: the counts, conditions, encounters and orders the app reads.
EHR_TYPES = frozenset({"Patient", "Observation", "Condition", "Encounter", "MedicationRequest", "DiagnosticReport"})
WBC = "6690-2"
COPD_CODES = {"13645005", "J44.9", "J44.1", "J44.0", "J43.9"}


def _preliminary_wbc(patient_id: str) -> dict:
    """A preliminary WBC after the fixture's last CBC, added by the test: shown hollow, graded, said preliminary."""
    return {
        "resourceType": "Observation",
        "id": "preliminary-wbc",
        "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": WBC}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": "2005-02-01T08:00:00Z",
        "valueQuantity": {"value": 2.1, "unit": "10*3/uL", "system": "http://unitsofmeasure.org", "code": "10*3/uL"},
    }


def _resources(bundle: dict) -> list[dict]:
    return [entry["resource"] for entry in bundle["entry"]]


@pytest.fixture(scope="module")
def ehr_world():
    if CHROMIUM is None:
        pytest.skip(
            "Chromium is not installed and could not be installed here (make test installs Debian's chromium "
            "when run as root): the SMART app browser test cannot run"
        )
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"playwright-core is missing: run `npm ci --prefix {BROWSER_DIR}` (make test does)")
    bundle = load_fixture(PATIENT_FILE)
    engine = FhirEngine.start()
    served = []
    try:
        engine.load(bundle, EHR_TYPES)
        patient_id = next(r["id"] for r in _resources(bundle) if r["resourceType"] == "Patient")
        engine.load(_preliminary_wbc(patient_id), {"Observation"})
        ehr = SmartEhr(fhir_engine=engine.base, redirect_uri="")
        ehr_server = Served(ehr.app())
        served.append(ehr_server)
        ehr.base = ehr_server.base
        settings = Settings(
            dev=True,
            database_url="sqlite://",
            audit_key="test-audit-key",
            fhir_deadline_ms=20_000,
            fhir_read_timeout_ms=20_000,
            fhir_connect_timeout_ms=5_000,
            smart_app={
                "client_id": CLIENT_ID,
                "introspection_url": f"{ehr.base}/introspect",
                "introspection_client_id": RESOURCE_SERVER[0],
                "introspection_client_secret": RESOURCE_SERVER[1],
            },
        )
        service = Served(create_app(settings, clock=lambda: AS_OF))
        served.append(service)
        ehr.redirect_uri = f"{service.base}/app/index.html"
        yield {"engine": engine, "ehr": ehr, "service": service.base, "bundle": bundle}
    finally:
        for server in reversed(served):
            server.stop()
        engine.stop()


def _card_link(world, patient_id: str) -> dict:
    """The febrile-neutropenia service, fetching from the EHR's FHIR engine itself, answers with cards
    that carry the app's `smart` link."""
    call = {
        "hook": "patient-view",
        "hookInstance": "0d6a3f7e-6d0c-4d8e-9a59-9f1b0c1e2a11",
        "fhirServer": world["engine"].base,
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }
    response = requests.post(f"{world['service']}/cds-services/febrile-neutropenia", json=call, timeout=60)
    assert response.status_code == 200, response.text
    links = [link for card in response.json()["cards"] for link in card.get("links", []) if link["type"] == "smart"]
    assert links, response.json()
    return links[0]


def _drive(launch_url: str, screenshots: str | None = None) -> dict:
    options = {
        "chromium": CHROMIUM,
        "launchUrl": launch_url,
        "screenshots": screenshots,
        "hoverAnalyte": "white_blood_cells",
    }
    finished = subprocess.run(
        ["node", str(BROWSER_DIR / "drive_app.mjs"), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BROWSER_DIR,
    )
    assert finished.returncode == 0, f"browser driver failed:\n{finished.stdout}\n{finished.stderr}"
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_card_link_launches_the_app_which_charts_the_counts_and_scores_mascc(ehr_world, tmp_path):
    bundle = ehr_world["bundle"]
    patient = next(r for r in _resources(bundle) if r["resourceType"] == "Patient")
    link = _card_link(ehr_world, patient["id"])
    assert link["type"] == "smart"
    assert link["url"] == f"{ehr_world['service']}/app/launch.html"
    assert json.loads(link["appContext"]) == {"finding": "febrile_neutropenia"}

    launch = f"{ehr_world['ehr'].base}/ehr/launch?" + urlencode(
        {"url": link["url"], "patient": patient["id"], "appContext": link["appContext"]}
    )
    # SMART_APP_SCREENSHOTS=docs/images refreshes the documentation's screenshots from this very run.
    seen = _drive(launch, os.environ.get("SMART_APP_SCREENSHOTS") or str(tmp_path))
    assert seen["ready"] == "true", seen
    assert not [line for line in seen["console"] if line.startswith(("error", "pageerror"))], "\n".join(seen["console"])

    # The EHR launch ran as SMART says: authorize with PKCE S256 accepted, token, introspection.
    steps = ehr_world["ehr"].seen
    assert [s for s in steps if s["endpoint"] == "authorize"][-1]["problem"] is None
    assert [s for s in steps if s["endpoint"] == "token"][-1]["problem"] is None
    assert any(s["endpoint"] == "introspect" and s["active"] for s in steps)
    read = {s["path"] for s in steps if s["endpoint"] == "fhir" and s["status"] == 200}
    assert read == {"Patient", *(kind for kind, _ in app_reads())}  # what the scopes were derived from
    assert seen["context"] == "Opened from the febrile neutropenia card." and seen["focus"] == "first-hour"

    # WBC: every result of the fixture, the nadir the fixture's minimum, grade bands labelled as text.
    wbc = sorted(
        (r["effectiveDateTime"], r["valueQuantity"]["value"], r["id"])
        for r in _resources(bundle)
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == WBC
    )
    nadir_time, nadir_value, nadir_id = min(wbc, key=lambda w: w[1])
    series = {s["analyte"]: s for s in seen["series"]}
    white = series["white_blood_cells"]
    assert white["chartPoints"] == pytest.approx([value for _, value, _ in wbc], abs=1e-4)
    assert white["chartNadir"] == pytest.approx([nadir_value], abs=1e-4)
    assert f"{nadir_value:.2f}" in white["nadirText"] and nadir_time[:10] in white["nadirText"]
    nadir_rows = [row for row in white["rows"] if "nadir" in row[3]]
    assert len(nadir_rows) == 1 and nadir_rows[0][4] == f"Observation/{nadir_id}"
    assert nadir_rows[0][2] == "CTCAE v5 grade 4"  # 0.54 ×10⁹/L is below the grade 4 cut-off of 1.0
    cuts = ctcae_cuts()[(Analyte.WHITE_BLOOD_CELLS, "10*9/l")]
    expected_labels = [f"CTCAE grade {c.grade} (<{c.below:g} ×10⁹/L)" for c in sorted(cuts, key=lambda c: c.below)]
    assert white["bandList"] == expected_labels
    assert white["bandLabels"] and set(white["bandLabels"]) <= set(expected_labels)
    assert f"Observation/{nadir_id}" in seen["hover"] and "CTCAE v5 grade 4" in seen["hover"]
    assert white["chartPreliminary"] == [2.1]
    (preliminary_row,) = [row for row in white["rows"] if row[3] == "preliminary"]
    assert preliminary_row[2] == "CTCAE v5 grade 2" and preliminary_row[4] == "Observation/preliminary-wbc"

    # Hb: the WHO 2024 cut-off for a man (13 g/dL) is the lower limit line and bounds grade 1.
    haemoglobin = series["hemoglobin"]
    assert haemoglobin["chartLowerLimit"] == [13.0]
    assert "CTCAE grade 1 (<13 g/dL)" in haemoglobin["bandList"]
    assert series["absolute_neutrophil_count"]["notRecordedText"] == "Not recorded in the data read."

    # MASCC: the record answers COPD (none coded) and age; the clinician answers the other two.
    conditions = {
        c["code"] for r in _resources(bundle) if r["resourceType"] == "Condition" for c in r["code"]["coding"]
    }
    assert not conditions & COPD_CODES
    weights = {item: points for item, (points, _, _) in mascc_points().items()}
    age = AS_OF.year - int(patient["birthDate"][:4]) - ((AS_OF.month, AS_OF.day) < (11, 20))
    assert age >= risk_cutoff("mascc_age_under").value
    unknown = weights["no_hypotension"] + weights["solid_tumour_or_no_fungal"] + weights["outpatient"]
    mild_low = weights["burden_none_or_mild"] + weights["no_copd"] + weights["no_dehydration"]
    mild = seen["mild"][-1]["view"]
    assert (mild["low"], mild["high"]) == (mild_low, mild_low + unknown)
    assert f"MASCC range {mild_low}–{mild_low + unknown}" in seen["mild"][-1]["text"]
    severe = seen["severe"][-1]
    severe_low = weights["burden_severe"] + weights["no_copd"]
    assert (severe["view"]["low"], severe["view"]["high"]) == (severe_low, severe_low + unknown)
    assert severe_low + unknown < risk_cutoff("mascc_low_risk_from").value
    assert "high risk (not low risk)" in severe["text"]
    assert "under 18 years" in seen["caveats"] and "haematological malignancy" in seen["caveats"]

    # First hour, read-only: nothing recorded is "not recorded", never "not done".
    assert "not recorded: Blood cultures" in seen["firstHour"]
    assert "not recorded: First empirical antibiotic dose" in seen["firstHour"]
    assert "not done" not in seen["firstHour"]

    # A phone-sized window: the charts shrink to it and nothing scrolls sideways.
    assert seen["phoneChartWidth"] <= 375 and seen["phoneOverflow"] is False


def test_the_app_works_without_app_context(ehr_world, tmp_path):
    """Several EHRs do not pass appContext on: the app opens on the counts, with no card context."""
    patient = next(r for r in _resources(ehr_world["bundle"]) if r["resourceType"] == "Patient")
    launch = f"{ehr_world['ehr'].base}/ehr/launch?" + urlencode(
        {"url": f"{ehr_world['service']}/app/launch.html", "patient": patient["id"]}
    )
    seen = _drive(launch)
    assert seen["ready"] == "true", seen
    assert seen["context"] == "" and seen["focus"] is None
    assert len({s["analyte"] for s in seen["series"]}) == 5
