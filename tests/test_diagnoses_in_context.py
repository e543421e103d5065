"""Issue #9: cards say what is documented, what on the chart may explain a cytopenia, and suggest the
problem-list entry the chart supports. Vignettes run the real pipeline (FHIR JSON -> facts -> rules -> cards)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.condition import Condition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.patient_view import patient_view_cards as cytopenia_cards
from cds_service.clinical.context import ChartCoverage, chart_context, code_rules
from cds_service.clinical.cytopenia import assess
from cds_service.knowledge_tables import read_table
from fhir_mappings import read_record
from fhir_mappings.conditions import read_condition
from tests.conftest import FIXTURES, assert_valid, load_fixture

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"}
LOINC = {
    "anc": ("751-8", "10*3/uL"),
    "wbc": ("6690-2", "10*3/uL"),
    "hb": ("718-7", "g/dL"),
    "plt": ("777-3", "10*3/uL"),
}


def obs(kind: str, value: float, days_ago: float = 1) -> dict:
    code, unit = LOINC[kind]
    time = NOW - timedelta(days=days_ago)
    return {
        "resourceType": "Observation",
        "id": f"{kind}-{days_ago:g}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": time.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def condition(
    code: str,
    display: str,
    system: str = ICD,
    onset: str = "2026-01-05",
    clinical: str = "active",
    verification: str = "confirmed",
    ident: str | None = None,
    abated: str | None = None,
) -> dict:
    resource = {
        "resourceType": "Condition",
        "id": ident or f"c-{code}",
        "clinicalStatus": {"coding": [{"code": clinical}]},
        "verificationStatus": {"coding": [{"code": verification}]},
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": onset,
    }
    if abated:
        resource["abatementDateTime"] = abated
    return resource


def order(
    rxcui: str | None, text: str, status: str = "active", authored: str = "2026-11-01", ident: str = "mr1"
) -> dict:
    concept = {"text": text}
    if rxcui:
        concept["coding"] = [{"system": RXNORM, "code": rxcui, "display": text}]
    return {
        "resourceType": "MedicationRequest",
        "id": ident,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": "Patient/p1"},
        "authoredOn": authored,
    }


def respond(*resources: dict, coverage: ChartCoverage | None = None, as_of: datetime = NOW) -> dict[str, dict]:
    """Cards by summary prefix ('Neutropenia', 'Anaemia', ...), each checked against the response schema."""
    coverage = ChartCoverage() if coverage is None else coverage
    record = read_record(PATIENT, resources, "p1")
    assessment = assess(record, as_of)
    cards = [c.to_json() for c in cytopenia_cards(assessment, "p1", "e1", chart_context(assessment, record, coverage))]
    assert_valid("response", {"cards": cards})
    return {c["summary"].split(":")[0]: c for c in cards}


def problem_list(card: dict) -> dict | None:
    """The draft Condition of the card's problem-list suggestion, validated as R4B."""
    found = [
        a["resource"]
        for s in card.get("suggestions", ())
        for a in s["actions"]
        if a.get("resource", {}).get("resourceType") == "Condition"
    ]
    assert len(found) <= 1
    if not found:
        return None
    Condition.model_validate(found[0])
    return found[0]


def icd(resource: dict) -> str:
    return resource["code"]["coding"][0]["code"]


# -- problem-list code choice -------------------------------------------------------------------


def test_neutropenia_on_active_chemotherapy_suggests_d70_1_with_the_regimen_and_its_last_date():
    cards = respond(obs("anc", 0.4), order("3002", "cyclophosphamide 500 MG Injection", authored="2026-11-10"))
    card = cards["Neutropenia"]
    assert "**Possible causes on the chart:**" in card["detail"]
    assert "active chemotherapy: cyclophosphamide" in card["detail"] and "last ordered 2026-11-10" in card["detail"]
    assert "MedicationRequest/mr1" in card["detail"]
    resource = problem_list(card)
    assert icd(resource) == "D70.1"
    assert resource["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert resource["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert resource["subject"] == {"reference": "Patient/p1"} and resource["encounter"] == {"reference": "Encounter/e1"}
    assert resource["evidence"][0]["detail"] == [{"reference": "Observation/anc-1"}]
    assert "cancer chemotherapy is active" in resource["note"][0]["text"]


def test_neutropenia_on_an_antithyroid_drug_suggests_d70_2_and_names_the_drug():
    card = respond(obs("anc", 0.8), order("6835", "methimazole 10 MG Oral Tablet"))["Neutropenia"]
    assert "Medication: **methimazole**, antithyroid drug known for agranulocytosis" in card["detail"]
    assert icd(problem_list(card)) == "D70.2"


def test_unexplained_persistent_neutropenia_suggests_d70_9_and_the_next_steps():
    card = respond(obs("anc", 0.9, 40), obs("anc", 0.8, 20), obs("anc", 0.9, 1))["Neutropenia"]
    detail = card["detail"]
    assert "**Nothing on the chart explains this**" in detail
    assert "Persisting over 28 days and unexplained" in detail
    for step in (
        "peripheral smear review",
        "vitamin B12, folate, ferritin",
        "haematology referral",
        "bone-marrow evaluation if still unexplained",
        "for the haematologist: CCUS/ICUS",
    ):
        assert step in detail
    resource = problem_list(card)
    assert icd(resource) == "D70.9"
    assert resource["onsetDateTime"].startswith((NOW - timedelta(days=40)).date().isoformat())


def test_unexplained_but_recent_neutropenia_gets_no_marrow_work_up_yet():
    detail = respond(obs("anc", 0.8))["Neutropenia"]["detail"]
    assert "Nothing on the chart explains this" in detail
    assert "Bone-marrow" not in detail


def test_grade_1_neutropenia_gets_no_problem_list_suggestion():
    anc = obs("anc", 1.7)
    anc["referenceRange"] = [{"low": {"value": 1.8, "unit": "10*3/uL"}}]
    card = respond(anc)["Neutropenia"]
    assert problem_list(card) is None


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        ((order("40048", "carboplatin 450 MG Injection"),), "D61.810"),
        ((order("1256", "azathioprine 50 MG Oral Tablet"),), "D61.811"),
        ((), "D61.818"),
    ],
)
def test_pancytopenia_code_follows_the_chart_and_is_the_only_card(chart, expected):
    cards = respond(obs("anc", 0.8), obs("hb", 7.9), obs("plt", 40), *chart)
    assert list(cards) == ["Pancytopenia"]
    assert icd(problem_list(cards["Pancytopenia"])) == expected


@pytest.mark.parametrize(
    ("chart", "expected"), [((order("4492", "fluorouracil 500 MG Injection"),), "D64.81"), ((), "D64.9")]
)
def test_anaemia_code_is_chemotherapy_specific_only_with_chemotherapy_on_the_chart(chart, expected):
    assert icd(problem_list(respond(obs("hb", 8.5), *chart)["Anaemia"])) == expected


def test_chemotherapy_encounter_condition_supports_d70_1_without_an_order():
    card = respond(obs("anc", 0.7), condition("Z51.11", "Encounter for antineoplastic chemotherapy"))["Neutropenia"]
    assert icd(problem_list(card)) == "D70.1"


@pytest.mark.parametrize(
    ("kind", "value", "title", "expected"),
    [("plt", 40, "Thrombocytopenia", "D69.6"), ("wbc", 1.5, "Leukopenia", "D72.819")],
)
def test_other_lineages_get_their_unspecified_code(kind, value, title, expected):
    assert icd(problem_list(respond(obs(kind, value))[title])) == expected


def test_stopped_and_draft_orders_are_not_contributors():
    card = respond(
        obs("anc", 0.8),
        order("3002", "cyclophosphamide", status="stopped"),
        order("6835", "methimazole", status="draft", ident="mr2"),
    )["Neutropenia"]
    assert "Possible contributors" not in card["detail"]
    assert icd(problem_list(card)) == "D70.9"


# -- what is documented ---------------------------------------------------------------------------


def test_documented_neutropenia_is_named_with_its_date_and_source_and_no_suggestion():
    card = respond(obs("anc", 0.8), condition("D70.9", "Neutropenia, unspecified", onset="2026-11-15"))["Neutropenia"]
    assert (
        "**Documented:** Neutropenia, unspecified since 2026-11-15 (ICD-10-CM D70.9; Condition/c-D70.9)"
        in card["detail"]
    )
    assert problem_list(card) is None


@pytest.mark.parametrize(
    ("status", "verification", "listed_as_resolved"),
    [("resolved", "confirmed", True), ("active", "entered-in-error", False), ("active", "refuted", False)],
)
def test_resolved_entered_in_error_and_refuted_diagnoses_do_not_count_as_documented(
    status, verification, listed_as_resolved
):
    card = respond(
        obs("anc", 0.8), condition("D70.9", "Neutropenia, unspecified", clinical=status, verification=verification)
    )["Neutropenia"]
    assert "**Documented:**" not in card["detail"]
    assert ("Previously documented, now resolved" in card["detail"]) is listed_as_resolved
    assert icd(problem_list(card)) == "D70.9"


def test_a_diagnosis_recorded_after_the_evaluation_moment_is_not_yet_known():
    card = respond(obs("anc", 0.8), condition("D70.9", "Neutropenia, unspecified", onset="2026-12-01"))["Neutropenia"]
    assert "**Documented:**" not in card["detail"]


def test_a_diagnosis_resolved_after_the_evaluation_moment_was_still_active_then():
    card = respond(obs("anc", 0.8), condition("D70.9", "Neutropenia", clinical="resolved", abated="2026-12-10"))[
        "Neutropenia"
    ]
    assert "**Documented:** Neutropenia since 2026-01-05" in card["detail"]


def test_ehr_text_in_a_diagnosis_is_escaped():
    card = respond(obs("anc", 0.8), condition("D70.9", "Neutropenia <b>*bold*</b>"))["Neutropenia"]
    assert "Neutropenia &lt;b&gt;\\*bold\\*&lt;/b&gt;" in card["detail"]


# -- less noise for the known and stable --------------------------------------------------------


def test_documented_chronic_neutropenia_no_worse_than_before_is_info_not_warning():
    chart = (
        obs("anc", 0.6, 30),
        obs("anc", 0.8, 1),
        condition("D70.9", "Neutropenia, unspecified", onset="2025-06-01"),
    )
    card = respond(*chart)["Neutropenia"]
    assert "grade 3" in card["summary"]
    assert card["indicator"] == "info"
    assert "no worse than before" in card["detail"] and "Trend:" in card["detail"]


def test_documented_neutropenia_at_a_new_nadir_keeps_its_warning():
    chart = (
        obs("anc", 0.9, 30),
        obs("anc", 0.6, 1),
        condition("D70.9", "Neutropenia, unspecified", onset="2025-06-01"),
    )
    assert respond(*chart)["Neutropenia"]["indicator"] == "warning"


def test_undocumented_severe_neutropenia_keeps_its_warning():
    assert respond(obs("anc", 0.6, 30), obs("anc", 0.8, 1))["Neutropenia"]["indicator"] == "warning"


# -- each category of cause -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab", "title", "code", "system", "display", "heading"),
    [
        (("anc", 0.8), "Neutropenia", "C96.9", ICD, "Malignant neoplasm of lymphoid tissue", "Cancer"),
        (("anc", 0.8), "Neutropenia", "C79.52", ICD, "Secondary malignant neoplasm of bone marrow", "Marrow disorder"),
        (("anc", 0.8), "Neutropenia", "91861009", SCT, "Acute myeloid leukemia", "Cancer"),
        (("anc", 0.8), "Neutropenia", "D46.9", ICD, "Myelodysplastic syndrome, unspecified", "Marrow disorder"),
        (("anc", 0.8), "Neutropenia", "D61.82", ICD, "Myelophthisis", "Marrow disorder"),
        (("hb", 8.5), "Anaemia", "D51.9", ICD, "Vitamin B12 deficiency anemia", "Nutritional deficiency"),
        (("hb", 8.5), "Anaemia", "D63.1", ICD, "Anemia in chronic kidney disease", "Kidney disease"),
        (("anc", 0.8), "Neutropenia", "R65.20", ICD, "Severe sepsis", "Infection"),
        (("anc", 0.8), "Neutropenia", "B44.0", ICD, "Invasive pulmonary aspergillosis", "Infection"),
        (("plt", 40), "Thrombocytopenia", "D69.3", ICD, "Immune thrombocytopenic purpura", "Autoimmune"),
        (("anc", 0.8), "Neutropenia", "Z94.84", ICD, "Stem cells transplant status", "Transplant"),
        (("anc", 0.8), "Neutropenia", "D73.81", ICD, "Neutropenic splenomegaly", "Spleen"),
        (
            ("anc", 0.8),
            "Neutropenia",
            "Z92.21",
            ICD,
            "Personal history of antineoplastic chemotherapy",
            "Chemotherapy or radiation",
        ),
        (
            ("anc", 0.8),
            "Neutropenia",
            "Z51.0",
            ICD,
            "Encounter for antineoplastic radiation therapy",
            "Chemotherapy or radiation",
        ),
        (("plt", 40), "Thrombocytopenia", "D69.42", ICD, "Congenital thrombocytopenia", "Genetic or constitutional"),
    ],
)
def test_each_cause_on_the_chart_is_listed_with_its_source(lab, title, code, system, display, heading):
    card = respond(obs(*lab), condition(code, display, system=system))[title]
    assert f"{heading}: **{display}**" in card["detail"]
    assert f"Condition/c-{code}" in card["detail"]
    assert "Nothing on the chart explains this" not in card["detail"]


def test_a_cause_for_another_lineage_is_not_listed():
    card = respond(obs("anc", 0.8), condition("D63.1", "Anemia in chronic kidney disease"))["Neutropenia"]
    assert "Kidney disease" not in card["detail"]


def test_g_csf_on_the_chart_is_shown_as_treatment_not_as_a_cause():
    card = respond(obs("anc", 0.4), order("338036", "pegfilgrastim 6 MG Injection"))["Neutropenia"]
    assert "Treatment on the chart: **pegfilgrastim**" in card["detail"]
    assert "Nothing on the chart explains this" in card["detail"]


# -- data that could not be read ------------------------------------------------------------------


def test_unread_medications_are_said_and_never_called_unexplained():
    card = respond(obs("anc", 0.8), coverage=ChartCoverage(medications=False))["Neutropenia"]
    assert "**Not checked:** active medications" in card["detail"]
    assert "Nothing on the chart explains this" not in card["detail"]
    assert "active medications could not be read" in problem_list(card)["note"][0]["text"]


def test_unread_problem_list_gives_no_suggestion_and_says_why():
    card = respond(obs("anc", 0.8), coverage=ChartCoverage(conditions=False))["Neutropenia"]
    assert problem_list(card) is None
    assert "the problem list could not be read" in card["detail"]


# -- the data files -------------------------------------------------------------------------------


def test_every_suggested_code_is_a_verified_code_in_the_shared_terminology():
    terminology = {
        (r["system"], r["code"]): r["tag"]
        for r in csv.DictReader((FIXTURES.parent / "reference" / "terminology.csv").open(encoding="utf-8"))
    }
    recognised = {(r["system"], r["code"]) for r in read_table("fhir_mappings", "condition_codes.csv")}
    for rules in code_rules().values():
        for rule in rules:
            assert terminology.get((rule.system, rule.code)) == "V1", rule.code
            assert (rule.system, rule.code) in recognised, f"{rule.code} would not be recognised once added"


def test_every_condition_code_row_is_in_the_shared_terminology_and_not_unverified():
    terminology = {
        (r["system"], r["code"]): r["tag"]
        for r in csv.DictReader((FIXTURES.parent / "reference" / "terminology.csv").open(encoding="utf-8"))
    }
    for row in read_table("fhir_mappings", "condition_codes.csv"):
        if (row["system"], row["code"]) not in terminology:
            # Codes the project verified itself (issue #12): ICD-10-CM in the pack's own CMS file copy, SNOMED CT
            # in the HL7 IPS pregnancy-status concept map.
            assert row["tag"] in ("V1", "V2") and "verified for issue #12" in row["source"], row["code"]
            continue
        assert "UNVERIFIED" not in terminology[(row["system"], row["code"])].split("-")[0]


# -- real data: Synthea categories A (chemotherapy) and E (anaemia documented) ---------------------


def _synthea(file_name: str) -> tuple[dict, list[dict]]:
    bundle = load_fixture(f"synthea-r4/{file_name}")
    resources = [e["resource"] for e in bundle["entry"]]
    return next(r for r in resources if r["resourceType"] == "Patient"), resources


def _request(patient: dict, resources: list[dict]) -> dict:
    def bundle(kinds, keep=lambda r: True):
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources if r["resourceType"] in kinds and keep(r)],
        }

    return {
        "hook": "patient-view",
        "hookInstance": "9b1c4d6e-2f3a-4b5c-8d7e-0a1b2c3d4e5f",
        "context": {"userId": "Practitioner/example", "patientId": patient["id"]},
        "prefetch": {
            "patient": patient,
            "bloodCounts": bundle(("Observation", "DiagnosticReport")),
            "conditions": bundle(("Condition",)),
            "medications": bundle(("MedicationRequest",), lambda r: r["status"] == "active"),
        },
    }


def _index(category_prefix: str) -> list[dict]:
    with (FIXTURES / "index.csv").open(encoding="utf-8") as handle:
        return [r for r in csv.DictReader(handle) if r["category"].startswith(category_prefix)]


def _lowest(resources: list[dict], loinc: str) -> dict:
    found = [r for r in resources if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == loinc]
    return min(found, key=lambda r: r["valueQuantity"]["value"])


def _cards_at(make_app, patient, resources, moment: str) -> list[dict]:
    as_of = datetime.fromisoformat(moment) + timedelta(hours=1)
    response = (
        make_app(as_of=as_of).test_client().post("/cds-services/cytopenia-review", json=_request(patient, resources))
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


def _card_at_nadir(make_app, row: dict, loinc: str, title: str) -> tuple[dict, list[dict], dict]:
    """(the card for `title` as of the patient's lowest `loinc` result, the bundle's resources, that result)."""
    patient, resources = _synthea(row["file"].split("/", 1)[1])
    nadir = _lowest(resources, loinc)
    cards = _cards_at(make_app, patient, resources, nadir["effectiveDateTime"])
    return next(c for c in cards if c["summary"].startswith(title)), resources, nadir


@pytest.mark.parametrize("row", _index("A_"), ids=lambda r: r["name"])
def test_synthea_chemotherapy_patients_show_the_regimen_at_their_white_count_nadir(make_app, row):
    card, resources, nadir = _card_at_nadir(make_app, row, "6690-2", "Leukopenia")
    chemo = [
        r
        for r in resources
        if r["resourceType"] == "MedicationRequest"
        and r["status"] == "active"
        and any(n in r["medicationCodeableConcept"]["text"].lower() for n in ("oxaliplatin", "docetaxel"))
    ]
    assert chemo and all(r["authoredOn"] <= nadir["effectiveDateTime"] for r in chemo)
    assert "Chemotherapy or radiation: **active chemotherapy:" in card["detail"]
    assert f"last ordered {chemo[-1]['authoredOn'][:10]}" in card["detail"]
    assert f"MedicationRequest/{chemo[-1]['id']}" in card["detail"]
    resource = problem_list(card)
    assert resource is not None and icd(resource) == "D72.819"


def test_synthea_whitney_ortiz_anaemia_on_oxaliplatin_is_coded_as_chemotherapy_anaemia(make_app):
    patient, resources = _synthea("Whitney_Ortiz_b9bbc884-486e-4159-9bf3-c666ecb90df7.json")
    cards = _cards_at(make_app, patient, resources, "2016-04-22T23:07:44+00:00")
    anaemia = next(c for c in cards if c["summary"].startswith("Anaemia"))
    assert "grade 2" in anaemia["summary"]
    assert icd(problem_list(anaemia)) == "D64.81"
    assert "oxaliplatin" in problem_list(anaemia)["note"][0]["text"]


@pytest.mark.parametrize("row", _index("E_"), ids=lambda r: r["name"])
def test_synthea_documented_anaemia_is_named_and_not_suggested_again(make_app, row):
    card, _, _ = _card_at_nadir(make_app, row, "718-7", "Anaemia")
    assert "**Documented:** Anemia \\(disorder\\) since" in card["detail"]
    assert "SNOMED CT 271737000" in card["detail"]
    assert problem_list(card) is None


def test_discovery_asks_only_for_active_medication_requests(client):
    service = next(s for s in client.get("/cds-services").get_json()["services"] if s["id"] == "cytopenia-review")
    assert (
        service["prefetch"]["medications"] == "MedicationRequest?patient={{context.patientId}}&status=active&_count=100"
    )


PHRASES = [(row["category"], row["pattern"]) for row in read_table("fhir_mappings", "condition_phrases.csv")]


def _named_in(text: str) -> tuple[str, ...]:
    """The categories whose documented phrases a Condition text names, by a plain case-insensitive search."""
    found = [category for category, pattern in PHRASES if re.search(pattern, text, re.IGNORECASE)]
    return tuple(dict.fromkeys(found))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([pattern for _, pattern in PHRASES]).flatmap(lambda p: st.from_regex(p, fullmatch=True)),
    st.text(st.characters(max_codepoint=127), max_size=12),
    st.text(st.characters(max_codepoint=127), max_size=12),
    st.booleans(),
)
def test_condition_text_naming_a_documented_phrase_is_read_in_any_case(phrase, before, after, upper):
    """Every text that names a phrase of the table (any case, any surrounding text) is read as its
    category, exactly as a plain search of each phrase reads it: the quick turn-away of texts that name
    none never turns one away."""
    text = before + (phrase.upper() if upper else phrase) + after
    condition = {"resourceType": "Condition", "id": "c1", "code": {"text": text}}
    assert tuple(dict.fromkeys(f.category for f in read_condition(condition))) == _named_in(text)


@pytest.mark.parametrize("text", ["Hyperlipidemia", "Viral sinusitis (disorder)", "Pneumothorax", "Duffy", "port"])
def test_condition_text_naming_no_documented_phrase_is_not_read(text):
    assert read_condition({"resourceType": "Condition", "id": "c1", "code": {"text": text}}) == []
