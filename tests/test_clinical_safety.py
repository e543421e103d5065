"""Issue #12 clinical-safety rules through the HTTP API: children, fever at the boundary, shock, G-CSF,
prophylaxis and the seed guidance said only when the record triggers it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.conftest import AS_OF, FIXTURES, assert_valid
from tests.fn_vignettes import (
    ICD,
    SEPTIC_SHOCK,
    anc,
    bp,
    condition,
    encounter,
    medication,
    request,
    temp,
    weight,
)
from tests.test_corpus import searchset

ALL_ICD = condition(ICD, "C91.00", "Acute lymphoblastic leukemia not having achieved remission")
STEROIDS = condition(ICD, "Z79.52", "Long term (current) use of systemic steroids")
PNEUMONIA = condition("http://snomed.info/sct", "0", "Pneumonia, right lower lobe")
CENTRAL_LINE = condition("http://snomed.info/sct", "0", "PICC line in situ")
ASPERGILLOSIS = condition(ICD, "B44.0", "Invasive pulmonary aspergillosis")


def _cards(client, *resources, birth_date="1970-01-01"):
    response = client.post("/cds-services/febrile-neutropenia", json=request(*resources, birth_date=birth_date))
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


def _doses(card):
    return [
        a["resource"]["dosageInstruction"][0].get("doseAndRate")
        for s in card.get("suggestions", [])
        for a in s["actions"]
        if a.get("resource", {}).get("resourceType") == "MedicationRequest"
    ]


# -- rule 1: children ------------------------------------------------------------------------------


def test_child_with_fn_gets_no_adult_dose_no_mascc_and_no_oral_regimen(client):
    cards = _cards(client, temp(38.9, 30), anc(0.2, 2), weight(20), ALL_ICD, birth_date="2020-06-01")
    main = cards[0]
    assert main["indicator"] == "critical"
    assert all(dose is None for dose in _doses(main)), "a child must never get an adult fixed dose drafted"
    labels = [s["label"] for s in main["suggestions"]]
    assert labels[0] == "Cefepime IV (dose by weight per the paediatric protocol), 2 blood cultures, daily CBC"
    assert "2 g" not in " ".join(labels) and "4.5 g" not in " ".join(labels)
    assert "Child (6 years)" in main["detail"] and "Weight used: 20 kg on 2026-11-18" in main["detail"]
    assert "MASCC and CISNE are adult scores: not computed" in main["detail"]
    assert "Age <60" not in main["detail"] and "Oral outpatient regimen" not in main["detail"]
    texts = [
        a["resource"]["dosageInstruction"][0]["text"]
        for s in main["suggestions"]
        for a in s["actions"]
        if a["resource"]["resourceType"] == "MedicationRequest"
    ]
    assert all("paediatric protocol" in t for t in texts)


def test_child_at_17_is_still_a_child_and_at_18_an_adult(client):
    child = _cards(client, temp(38.9, 30), anc(0.2, 2), birth_date="2008-11-21")[0]
    assert "Child (17 years)" in child["detail"] and "No body weight on record" in child["detail"]
    adult = _cards(client, temp(38.9, 30), anc(0.2, 2), birth_date="2008-11-19")[0]
    assert (
        "Child" not in adult["detail"]
        and adult["suggestions"][0]["label"] == "Cefepime 2 g IV every 8 hours, 2 blood cultures, daily CBC"
    )


def test_child_weight_older_than_the_window_is_not_current(client):
    main = _cards(client, temp(38.9, 30), anc(0.2, 2), weight(22, days_before=45), birth_date="2018-01-01")[0]
    assert "No current weight (latest 22 kg on 2026-10-06)" in main["detail"]


def test_icd10cm_acute_lymphoblastic_leukaemia_is_acute_leukaemia_for_mascc(client):
    main = _cards(client, temp(38.9, 30), anc(0.2, 2), ALL_ICD)[0]
    assert "MASCC: not applied (acute leukaemia coded" in main["detail"]


def test_child_hypotension_alone_is_not_shock_but_coded_shock_is(client):
    low_bp = _cards(client, temp(38.9, 30), anc(0.2, 2), bp(85), birth_date="2019-01-01")[0]
    assert "Shock: resuscitate first" not in low_bp["detail"]
    coded = _cards(client, temp(38.9, 30), anc(0.2, 2), SEPTIC_SHOCK, birth_date="2019-01-01")
    assert coded[0]["detail"].startswith("Shock: resuscitate first")
    first_set = coded[0]["suggestions"][0]  # vancomycin rides in every first-hour order set
    vancomycin = next(
        a for a in first_set["actions"] if "vancomycin" in a["resource"]["medicationCodeableConcept"]["text"].lower()
    )
    assert "doseAndRate" not in vancomycin["resource"]["dosageInstruction"][0]


# -- rule 2: fever with ANC < 1.0 is never silent --------------------------------------------------


@pytest.mark.parametrize(
    ("readings", "value", "missed"),
    [
        (
            [temp(38.3, 30)],
            0.5,
            ["IDSA 2010 neutropenia: ANC 0.5 ×10⁹/L is exactly at the &lt;0.5 cut-off", "CTCAE v5.0 fever"],
        ),
        ([temp(38.0, 30)], 0.9, ["IDSA 2010 fever: highest reading 38.0 °C, 0.3 °C under 38.3 °C", "CTCAE v5.0 fever"]),
        (
            [temp(38.0, 90), temp(38.1, 30)],
            0.7,
            ["IDSA 2010 neutropenia: ANC 0.7 ×10⁹/L is 0.2 above", "CTCAE v5.0 fever"],
        ),
    ],
    ids=["anc-0.5-single-38.3", "single-38.0-anc-0.9", "sustained-60-min-anc-0.7"],
)
def test_fever_at_the_boundary_gives_a_warning_saying_what_was_missed(client, readings, value, missed):
    cards = _cards(client, *readings, anc(value, 2))
    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "warning" and "missed at the boundary" in card["summary"]
    for fragment in missed:
        assert fragment in card["detail"], fragment
    assert "A single ANC result cannot be projected" in card["detail"]
    assert card["suggestions"][0]["label"] == "Consider: Cefepime 2 g IV every 8 hours, 2 blood cultures, daily CBC"


@pytest.mark.parametrize(
    ("reading", "value"),
    [(37.9, 0.5), (38.3, 1.0)],
    ids=["37.9-is-not-a-fever-reading", "anc-1.0-is-not-below-1.0"],
)
def test_neighbours_of_the_boundary_stay_as_before(client, reading, value):
    cards = _cards(client, temp(reading, 30), anc(value, 2))
    assert not any("missed at the boundary" in c["summary"] for c in cards)


def test_falling_anc_above_1_with_fever_at_the_boundary_is_said(client):
    cards = _cards(client, temp(38.1, 30), anc(2.0, 50), anc(1.6, 26), anc(1.2, 2))
    assert "missed at the boundary" in cards[0]["summary"]
    assert "ANC projected" in cards[0]["detail"]


# -- rule 4: shock ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("systolic", "shock"), [(90, True), (91, False)], ids=["sbp-90", "sbp-91"])
def test_systolic_90_leads_with_resuscitation_and_withholds_ceftazidime(client, systolic, shock):
    cards = _cards(client, temp(38.9, 30), anc(0.2, 2), bp(systolic), weight(80))
    main, *companion = cards
    labels = [s["label"] for s in main["suggestions"]]
    companion_labels = [s["label"] for c in companion for s in c["suggestions"]]
    if shock:
        assert main["detail"].startswith("Shock: resuscitate first")
        assert not any("Ceftazidime" in label for label in labels)
        assert "Consider adding an aminoglycoside (IDSA 2010: may be added for complications)" in companion_labels
        assert labels[0] == "Cefepime 2 g IV every 8 hours + vancomycin, 2 blood cultures, daily CBC"
    else:
        assert "Shock" not in main["detail"]
        assert "Ceftazidime 2 g IV every 8 hours, 2 blood cultures, daily CBC (not in IDSA 2010 list)" in labels
        assert not any("aminoglycoside" in label for label in companion_labels)
    assert "not in the IDSA 2010 list for empirical monotherapy" in main["detail"]


def test_corticosteroids_say_signs_may_be_minimal_only_when_coded(client):
    with_steroids = _cards(client, temp(38.9, 30), anc(0.2, 2), STEROIDS)[0]
    assert "signs of infection may be minimal" in with_steroids["detail"]
    without = _cards(client, temp(38.9, 30), anc(0.2, 2))[0]
    assert "signs of infection may be minimal" not in without["detail"]


# -- rule 6: G-CSF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "birth_date", "reason"),
    [
        ([anc(0.2, 2)], "1960-01-01", "age over 65 years (age 66)"),
        ([anc(0.05, 2)], "1970-01-01", "profound neutropenia now"),
        ([anc(0.2, 2), ASPERGILLOSIS], "1970-01-01", "invasive fungal infection coded"),
        ([anc(0.2, 2), PNEUMONIA], "1970-01-01", "pneumonia documented"),
        ([anc(0.2, 2), encounter("IMP", 3000)], "1970-01-01", "in hospital when the fever began"),
    ],
    ids=["age-66", "anc-0.05", "aspergillosis", "pneumonia", "inpatient"],
)
def test_gcsf_is_considered_with_its_asco_reason(client, resources, birth_date, reason):
    cards = _cards(client, temp(38.9, 30), *resources, weight(60), birth_date=birth_date)
    assert f"Consider G-CSF (ASCO high-risk features): {reason}" in cards[0]["detail"]
    gcsf = next(s for s in cards[1]["suggestions"] if "filgrastim" in s["label"])  # the FN card's companion
    assert gcsf["label"].startswith("Consider filgrastim 300 mcg SC daily")


def test_gcsf_not_offered_without_a_criterion_and_age_65_is_not_over_65(client):
    cards = _cards(client, temp(38.9, 30), anc(0.2, 2), weight(60), birth_date="1961-11-01")
    assert "G-CSF: not routine in uncomplicated febrile neutropenia" in cards[0]["detail"]
    assert not any("filgrastim" in s["label"] for c in cards for s in c.get("suggestions", ()))


# -- rule 7: prophylaxis ---------------------------------------------------------------------------


def test_profound_afebrile_neutropenia_names_each_prophylaxis_with_its_stop_rule(client):
    card = _cards(client, temp(36.9, 30), anc(0.05, 2))[0]
    assert "Antibacterial: levofloxacin or ciprofloxacin" in card["detail"]
    assert "Antifungal: an oral triazole or a parenteral echinocandin" in card["detail"]
    assert "if HSV-seropositive and in leukaemia induction or allogeneic HSCT" in card["detail"]
    assert "until WBC recovery or mucositis resolution, whichever is later" in card["detail"]
    assert card["detail"].count("until ANC recovery \\(ANC ≥0.5 ×10⁹/L\\)") == 2
    assert "No gut decontamination." in card["detail"]


def test_prophylaxis_not_named_when_anc_is_not_profound(client):
    card = _cards(client, temp(36.9, 30), anc(0.1, 2))[0]
    assert "Antibacterial:" not in card["detail"] and "prophylaxis trigger" in card["detail"]


def test_fever_on_quinolone_prophylaxis_offers_to_stop_the_active_order(client):
    quinolone = medication("311296", "levofloxacin 750 MG Oral Tablet")
    cards = _cards(client, temp(38.9, 30), anc(0.2, 2), quinolone)
    stops = [a for s in cards[0]["suggestions"] for a in s["actions"] if a["type"] == "delete"]
    assert stops[:1] == [
        {
            "type": "delete",
            "description": "Stop levofloxacin 750 MG Oral Tablet",
            "resourceId": f"MedicationRequest/{quinolone['id']}",
        }
    ]


# -- rule 11: seed guidance only when triggered ----------------------------------------------------


def test_macrolide_and_central_line_lines_only_when_the_record_shows_them(client):
    plain = _cards(client, temp(38.9, 30), anc(0.2, 2))[0]["detail"]
    assert "macrolide" not in plain and "central line routinely" not in plain
    assert "Local resistance patterns guide the final antibiotic choice." in plain
    triggered = _cards(client, temp(38.9, 30), anc(0.2, 2), PNEUMONIA, CENTRAL_LINE)[0]["detail"]
    assert "Pneumonia documented: consider adding a macrolide" in triggered
    assert "Do not remove the central line routinely" in triggered


# -- rule 3: preliminary and corrected results, DiagnosticReport time -----------------------------


def test_preliminary_anc_with_fever_is_febrile_neutropenia_marked_preliminary(client):
    preliminary = anc(0.2, 2)
    preliminary["status"] = "preliminary"
    main = _cards(client, temp(38.9, 30), preliminary)[0]
    assert main["indicator"] == "critical"
    assert main["summary"].startswith("Febrile neutropenia: ANC 0.2 (preliminary), 38.9 °C")


def test_cancelled_anc_is_not_used_and_said(client):
    cancelled = anc(0.2, 2)
    cancelled["status"] = "cancelled"
    card = _cards(client, temp(38.9, 30), cancelled)[0]
    assert card["summary"].startswith("Fever 38.9 °C, no current ANC")
    assert f"Observation/{cancelled['id']}: was cancelled \\(status 'cancelled'\\): not used" in card["detail"]


def _pat2(with_reports: bool) -> dict:
    bundle = orjson.loads((FIXTURES / "hl7-r4-examples" / "Bundle-101.json").read_bytes())
    items = [e["resource"] for e in bundle["entry"]]
    patient = orjson.loads((FIXTURES / "hl7-r4-examples" / "Patient-pat2.json").read_bytes())
    prefetch = {
        "patient": patient,
        "bloodCounts": searchset([r for r in items if r["resourceType"] == "Observation"]),
        "conditions": searchset([]),
        "medications": searchset([]),
    }
    if with_reports:
        prefetch["reports"] = searchset([r for r in items if r["resourceType"] == "DiagnosticReport"])
    return {
        "hook": "patient-view",
        "hookInstance": "6f1c2d1e-0000-4000-8000-000000000012",
        "context": {"userId": "Practitioner/example", "patientId": "pat2"},
        "prefetch": prefetch,
    }


@pytest.mark.parametrize("with_reports", [True, False], ids=["report-prefetched", "report-not-sent"])
def test_hl7_pat2_results_take_the_time_of_their_diagnostic_report(make_app, with_reports):
    client = make_app(as_of=datetime(2011, 3, 5, tzinfo=UTC)).test_client()
    response = client.post("/cds-services/cytopenia-review", json=_pat2(with_reports))
    assert response.status_code == 200
    summaries = [c["summary"] for c in response.get_json()["cards"]]
    if with_reports:
        assert any(s.startswith("Neutropenia: ANC 0.9 (CTCAE v5 grade 3") for s in summaries), summaries
    else:
        assert summaries == ["Cytopenia not assessed: no usable blood count — check the results not used"]


def test_every_patient_view_service_and_the_order_check_ask_for_diagnostic_reports(client):
    services = client.get("/cds-services").get_json()["services"]
    for service in services:
        assert service["prefetch"]["reports"] == "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=50"


# -- patient-view cytopenia-review: documented stable, clozapine, pregnancy, infants ---------------


def _lab(code: str, value: float, unit: str, days_ago: float, ident: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/cv"},
        "effectiveDateTime": (AS_OF - timedelta(days=days_ago)).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def _review(client, labs, conditions=(), medications=(), gender="female", birth_date="1970-01-01"):
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": "cv"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "cv", "gender": gender, "birthDate": birth_date},
            "bloodCounts": searchset(labs),
            "conditions": searchset([{**c, "subject": {"reference": "Patient/cv"}} for c in conditions]),
            "medications": searchset([{**m, "subject": {"reference": "Patient/cv"}} for m in medications]),
        },
    }
    response = client.post("/cds-services/cytopenia-review", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return {c["summary"].split(":")[0]: c for c in document["cards"]}


def _anc_series(*values_days):
    return [_lab("751-8", v, "10*9/L", d, f"anc-{d}") for v, d in values_days]


NEUTROPENIA_2025 = {**condition(ICD, "D70.9", "Neutropenia, unspecified"), "onsetDateTime": "2025-06-01"}


def test_documented_stable_neutropenia_does_not_repeat_the_work_up(client):
    card = _review(client, _anc_series((0.6, 60), (0.8, 30), (0.8, 1)), [NEUTROPENIA_2025])["Neutropenia"]
    labels = [s["label"] for s in card.get("suggestions", [])]
    assert "Peripheral blood smear review" not in labels and "Referral to haematology" not in labels
    assert "is not suggested again" in card["detail"]


def test_documented_neutropenia_at_a_new_nadir_gets_the_work_up(client):
    card = _review(client, _anc_series((0.9, 60), (0.8, 30), (0.6, 1)), [NEUTROPENIA_2025])["Neutropenia"]
    labels = [s["label"] for s in card.get("suggestions", [])]
    assert "Peripheral blood smear review" in labels and "Referral to haematology" in labels


@pytest.mark.parametrize(
    ("value", "band", "action"),
    [(1.2, "mild neutropenia", "Continue clozapine"), (0.7, "moderate neutropenia", "Interrupt clozapine")],
)
def test_patient_on_clozapine_is_told_the_band_and_its_action(client, value, band, action):
    clozapine = medication("2626", "clozapine 100 MG Oral Tablet")
    cards = _review(client, _anc_series((value, 1)), medications=[clozapine])
    if "Clozapine" in cards:  # a hold band is its own drug-safety card
        assert f"**{band.capitalize()}:** {action}" in cards["Clozapine"]["detail"]
        assert "**On clozapine" not in cards["Neutropenia"]["detail"]
        return
    card = cards["Neutropenia"]
    assert f"**On clozapine: {band}.** {action}" in card["detail"]
    assert card["detail"].count("Monitoring:") == 1 and "monthly" not in card["detail"]


def test_clozapine_in_the_normal_range_adds_no_band_line(client):
    clozapine = medication("2626", "clozapine 100 MG Oral Tablet")
    cards = _review(client, _anc_series((1.5, 1)), medications=[clozapine])
    assert not any("On clozapine" in c.get("detail", "") for c in cards.values())


def _hb(value: float, low: float | None = None) -> dict:
    lab = _lab("718-7", value, "g/dL", 1, f"hb-{value}-{low}")
    if low is not None:
        lab["referenceRange"] = [{"low": {"value": low, "unit": "g/dL", "code": "g/dL"}}]
    return lab


def _pregnancy_status(answer: str, display: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"preg-{answer}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]},
        "subject": {"reference": "Patient/cv"},
        "effectiveDateTime": (AS_OF - timedelta(days=3)).isoformat(),
        "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": answer}], "text": display},
    }


def test_second_trimester_pregnancy_uses_the_10_5_cut_off(client):
    second = condition(ICD, "Z34.02", "Supervision of normal first pregnancy, second trimester")
    assert "Anaemia" not in _review(client, [_hb(11.5)], [second], birth_date="1996-01-01")
    card = _review(client, [_hb(11.5)], birth_date="1996-01-01")["Anaemia"]
    assert "Pregnancy status not known: the non-pregnant WHO 2024 cut-off is used." in card["detail"]


@pytest.mark.parametrize(
    "evidence",
    [condition(ICD, "Z33.1", "Pregnant state, incidental"), _pregnancy_status("LA15173-0", "Pregnant")],
    ids=["z33.1", "pregnancy-status-observation"],
)
def test_pregnancy_with_unknown_trimester_says_which_cut_off_is_used(client, evidence):
    labs = [_hb(10.8)] + ([evidence] if evidence["resourceType"] == "Observation" else [])
    conditions = [evidence] if evidence["resourceType"] == "Condition" else []
    card = _review(client, labs, conditions, birth_date="1996-01-01")["Anaemia"]
    assert "trimester not recorded: the WHO 2024 first/third-trimester cut-off 11 g/dL is used" in card["detail"]
    assert "second trimester 10.5 g/dL" in card["detail"]


def test_not_pregnant_statement_and_a_man_get_no_pregnancy_line(client):
    stated = _review(client, [_hb(11.5), _pregnancy_status("LA26683-5", "Not pregnant")], birth_date="1996-01-01")
    assert "Pregnan" not in stated["Anaemia"]["detail"]
    man = _review(client, [_hb(12.5)], gender="male", birth_date="1968-01-01")
    assert "Pregnan" not in man["Anaemia"]["detail"]


def test_infant_under_6_months_is_graded_only_against_the_lab_range(client):
    [gap] = _review(client, [_hb(9.0)], birth_date="2026-09-01").values()
    assert "haemoglobin not graded: no WHO 2024 cut-off below 6 months" in gap["detail"]
    card = _review(client, [_hb(9.0, low=10.0)], birth_date="2026-09-01")["Anaemia"]
    assert "No WHO 2024 cut-off below 6 months: graded only against the lab's range." in card["detail"]


def test_pneumonia_in_a_condition_is_a_vancomycin_indication_as_in_the_order_check(client):
    cards = _cards(client, temp(38.9, 30), anc(0.2, 2), PNEUMONIA, weight(70))
    assert "Vancomycin indicated: Pneumonia, right lower lobe" in cards[0]["detail"]
    assert (
        cards[0]["suggestions"][0]["label"] == "Cefepime 2 g IV every 8 hours + vancomycin, 2 blood cultures, daily CBC"
    )


def test_unknown_age_gets_no_adult_fixed_dose(client):
    body = request(temp(38.9, 30), anc(0.2, 2))
    del body["prefetch"]["patient"]["birthDate"]
    response = client.post("/cds-services/febrile-neutropenia", json=body)
    main = response.get_json()["cards"][0]
    assert all(dose is None for dose in _doses(main))
    assert "**Age unknown:** no adult fixed dose is drafted" in main["detail"]


def test_the_final_version_of_a_draw_replaces_its_preliminary_result(client):
    preliminary, final = anc(0.3, 2), anc(0.6, 2)
    preliminary["status"] = "preliminary"
    for result in (preliminary, final):
        result["specimen"] = {"reference": "Specimen/draw-1"}
    main = _cards(client, temp(38.9, 30), preliminary, final)[0]
    assert main["summary"].startswith("Febrile neutropenia: ANC 0.6, 38.9 °C")


def test_a_corrected_temperature_is_marked_corrected(client):
    corrected = temp(38.9, 30)
    corrected["status"] = "corrected"
    main = _cards(client, corrected, anc(0.2, 2))[0]
    assert "38.9 °C (corrected)" in main["summary"]
