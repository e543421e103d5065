"""Clinical vignettes through the HTTP API: each row names the rule it exercises and what the clinician must see."""

from __future__ import annotations

import pytest

from tests.conftest import assert_valid
from tests.fn_vignettes import (
    AML,
    COPD,
    LYMPHOMA,
    PENICILLIN_ALLERGY_STATUS,
    SEPTIC_SHOCK,
    SOLID_TUMOUR,
    allergy,
    anc,
    bp,
    encounter,
    medication,
    observation,
    request,
    temp,
    weight,
)

FN = "Febrile neutropenia: "
FIRST_HOUR = ", 2 blood cultures, daily CBC"
CULTURES_ONLY = "2 blood cultures and daily CBC only (antibiotic ordered separately)"
CEFEPIME, MEROPENEM, PIPTAZ, CEFTAZIDIME = (
    "Cefepime 2 g IV every 8 hours",
    "Meropenem 1 g IV every 8 hours",
    "Piperacillin-tazobactam 4.5 g IV every 6 hours",
    "Ceftazidime 2 g IV every 8 hours",
)
AZTREONAM_VANCOMYCIN = "Aztreonam IV (dose per local protocol) + Vancomycin 15-20 mg/kg IV every 8-12 hours"
CIPRO_CLINDAMYCIN = (
    "Ciprofloxacin (dose and route per local protocol) + Clindamycin (dose and route per local protocol)"
)


def order_sets(*regimens: str, flagged: tuple[str, ...] = ()) -> list[str]:
    """The FN card's first-hour order sets: each regimen with the cultures and daily CBC, then cultures only."""
    flags = {r: "check allergy" for r in flagged}
    return [
        r + FIRST_HOUR + (f" ({flags.get(r) or FLAGS[r]})" if r in flags or r in FLAGS else "") for r in regimens
    ] + [CULTURES_ONLY]


FLAGS = {CEFTAZIDIME: "not in IDSA 2010 list"}
EMPIRICAL = order_sets(CEFEPIME, MEROPENEM, PIPTAZ, CEFTAZIDIME)
ALTERNATIVES = order_sets(AZTREONAM_VANCOMYCIN, CIPRO_CLINDAMYCIN)
WITH_VANCOMYCIN = order_sets(*(r + " + vancomycin" for r in (CEFEPIME, MEROPENEM, PIPTAZ, CEFTAZIDIME)))
IN_SHOCK = order_sets(*(r + " + vancomycin" for r in (CEFEPIME, MEROPENEM, PIPTAZ)))  # ceftazidime withheld
BOUNDARY = "febrile neutropenia definitions missed at the boundary"
CONSIDER = [f"Consider: {label}" for label in EMPIRICAL]

# (id, rule exercised, resources, expected first-card summary fragment, indicator, suggestion labels, detail fragments)
VIGNETTES = [
    (
        "single-38.2-no-fever",
        "IDSA 2010 fever: single >=38.3 (38.2 is not); a single reading >=38.0 with ANC <1.0 is never silent",
        [temp(38.2, 30), anc(0.3, 2)],
        BOUNDARY,
        "warning",
        CONSIDER,
        ["IDSA 2010 fever: highest reading 38.2 °C, 0.1 °C under 38.3 °C", "cannot be projected"],
    ),
    (
        "single-38.3-idsa-not-ctcae",
        "IDSA single >=38.3 vs CTCAE single >38.3",
        [temp(38.3, 30), anc(0.3, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["IDSA 2010 (ANC <0.5): **met**", "CTCAE v5.0 (ANC <1.0): not met"],
    ),
    (
        "38.0-38.1-65-min",
        "IDSA >=38.0 sustained over 1 h (65 min span); CTCAE >1 h",
        [temp(38.0, 95), temp(38.1, 30), anc(0.3, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["sustained over 60 min", "IDSA 2010 (ANC <0.5): **met**; CTCAE v5.0 (ANC <1.0): **met**"],
    ),
    (
        "38.0-38.1-60-min",
        "IDSA 'over a 1-h period' met at exactly 60 min; CTCAE 'more than one hour' not",
        [temp(38.0, 90), temp(38.1, 30), anc(0.3, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["CTCAE v5.0 (ANC <1.0): not met"],
    ),
    (
        "38.0-37.6-38.1-broken-run",
        "sustained rule: no reading below 38.0 in between",
        [temp(38.0, 120), temp(37.6, 80), temp(38.1, 30), anc(0.3, 2)],
        BOUNDARY,
        "warning",
        CONSIDER,
        [],
    ),
    (
        "38.0-38.1-40-min",
        "sustained rule: span under one hour is not fever",
        [temp(38.0, 70), temp(38.1, 30), anc(0.3, 2)],
        BOUNDARY,
        "warning",
        CONSIDER,
        [],
    ),
    (
        "fahrenheit-101.5",
        "Fahrenheit converted: 101.5 F = 38.6 C",
        [temp(101.5, 30, unit="[degF]", code="8310-5"), anc(0.2, 2)],
        "38.6 °C",
        "critical",
        EMPIRICAL,
        ["**Fever 38.6 °C**, reported 101.5 \\[degF\\]"],
    ),
    (
        "fahrenheit-100.9",
        "Fahrenheit 100.9 F = 38.28 C: below 38.3",
        [temp(100.9, 30, unit="[degF]"), anc(0.2, 2)],
        BOUNDARY,
        "warning",
        CONSIDER,
        [],
    ),
    (
        "anc-exactly-0.5",
        "IDSA ANC <0.5 (0.5 is not); CTCAE ANC <1.0 fires alone",
        [temp(38.6, 30), anc(0.5, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["IDSA 2010 (ANC <0.5): not met", "CTCAE v5.0 (ANC <1.0): **met**"],
    ),
    (
        "falling-series-predicts",
        "IDSA ANC expected <0.5 within 48 h (least-squares projection)",
        [temp(38.4, 30), anc(2.0, 50), anc(1.6, 26), anc(1.1, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["IDSA 2010 (ANC <0.5): **met**", "48 h after the latest (3 results, least squares)"],
    ),
    (
        "single-anc-never-projected",
        "never predict from one value",
        [temp(38.4, 30), anc(1.1, 2)],
        "No card",
        None,
        [],
        [],
    ),
    (
        "anc-0.7-ctcae-38.5",
        "CTCAE FN: ANC <1.0 and >38.3",
        [temp(38.5, 30), anc(0.7, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["IDSA 2010 (ANC <0.5): not met"],
    ),
    (
        "stable-anc-1.8-fever",
        "FN excluded: ANC >=1.0 and not falling",
        [temp(39.0, 30), anc(1.8, 2)],
        "No card",
        None,
        [],
        [],
    ),
    (
        "immediate-penicillin-allergy",
        "IDSA immediate-type beta-lactam allergy -> aztreonam+vancomycin or cipro+clindamycin",
        [temp(38.6, 30), anc(0.2, 2), allergy("Penicillin", "Anaphylaxis")],
        FN,
        "critical",
        ALTERNATIVES,
        ["Withheld: Cefepime", "immediate-type"],
    ),
    (
        "rash-penicillin-allergy",
        "non-immediate penicillin allergy: penicillin flagged, cephalosporins offered",
        [temp(38.6, 30), anc(0.2, 2), allergy("amoxicillin", "maculopapular rash")],
        FN,
        "critical",
        order_sets(
            CEFEPIME, MEROPENEM, PIPTAZ, CEFTAZIDIME, AZTREONAM_VANCOMYCIN, CIPRO_CLINDAMYCIN, flagged=(PIPTAZ,)
        ),
        ["tolerate cephalosporins"],
    ),
    (
        "z88.0-allergy-status",
        "ICD-10-CM Z88.0 as a condition: reaction type unknown, penicillin flagged",
        [temp(38.6, 30), anc(0.2, 2), PENICILLIN_ALLERGY_STATUS],
        FN,
        "critical",
        order_sets(
            CEFEPIME, MEROPENEM, PIPTAZ, CEFTAZIDIME, AZTREONAM_VANCOMYCIN, CIPRO_CLINDAMYCIN, flagged=(PIPTAZ,)
        ),
        ["Allergy status to penicillin (type unknown)"],
    ),
    (
        "quinolone-prophylaxis",
        "fever on fluoroquinolone prophylaxis: stop it, IV therapy, no oral quinolone",
        [temp(38.6, 30), anc(0.2, 2), medication("311296", "levofloxacin 750 MG Oral Tablet")],
        FN,
        "critical",
        EMPIRICAL,
        ["Fever on fluoroquinolone prophylaxis", "stop the quinolone", "no oral quinolone"],
    ),
    (
        "quinolone-prophylaxis-with-allergy",
        "allergy alternatives without a quinolone after quinolone prophylaxis",
        [temp(38.6, 30), anc(0.2, 2), allergy("Penicillins", "hives"), medication("2551", "ciprofloxacin")],
        FN,
        "critical",
        order_sets(AZTREONAM_VANCOMYCIN),
        ["fluoroquinolone prophylaxis was given before the fever"],
    ),
    (
        "mascc-high",
        "MASCC range entirely <21 -> high risk (SBP 85, COPD, inpatient at onset; lymphoma without fungal "
        "infection; age 56)",
        [temp(38.6, 30), anc(0.2, 2), bp(85), COPD, LYMPHOMA, encounter("IMP", 3000)],
        FN,
        "critical",
        IN_SHOCK,
        ["MASCC 6–14: high risk (not low risk)."],
    ),
    (
        "mascc-low-possible",
        "MASCC: favourable FHIR items give 18-26; low risk not established without clinician items",
        [temp(38.6, 30), anc(0.2, 2), bp(125), SOLID_TUMOUR, encounter("AMB", 60)],
        FN,
        "critical",
        EMPIRICAL,
        ["MASCC 18–26: not decided", "(low risk ≥21)", "Oral outpatient regimen", "CISNE"],
    ),
    (
        "aml-no-mascc",
        "MASCC not for acute leukaemia induction",
        [temp(38.6, 30), anc(0.05, 2), AML],
        FN,
        "critical",
        EMPIRICAL,
        ["MASCC: not applied (acute leukaemia coded"],
    ),
    (
        "septic-shock-vancomycin",
        "vancomycin with a documented indication, named",
        [temp(38.9, 30), anc(0.1, 2), SEPTIC_SHOCK, weight(80)],
        FN,
        "critical",
        IN_SHOCK,
        ["Vancomycin indicated: haemodynamic instability or severe sepsis"],
    ),
    (
        "no-indication-vancomycin-not-routine",
        "vancomycin not routine without indication",
        [temp(38.9, 30), anc(0.1, 2)],
        FN,
        "critical",
        EMPIRICAL,
        ["Vancomycin: not routine, no documented indication"],
    ),
    (
        "severe-neutropenia-no-gcsf-from-count",
        "ASCO: G-CSF is not routine for afebrile neutropenia; never drafted from a count alone",
        [temp(37.2, 30), anc(0.3, 2), weight(70)],
        "Severe neutropenia without fever",
        "warning",
        ["Repeat CBC with differential"],
        ["G-CSF: not routine for afebrile neutropenia"],
    ),
    (
        "severe-neutropenia-missing-weight",
        "no G-CSF line depends on weight for afebrile neutropenia",
        [temp(37.2, 30), anc(0.3, 2)],
        "Severe neutropenia without fever",
        "warning",
        ["Repeat CBC with differential"],
        ["not routine for afebrile neutropenia"],
    ),
    (
        "severe-neutropenia-on-gcsf",
        "no G-CSF suggestion when G-CSF already active",
        [temp(37.2, 30), anc(0.3, 2), weight(70), medication("68442", "filgrastim")],
        "Severe neutropenia without fever",
        "warning",
        ["Repeat CBC with differential"],
        ["G-CSF already active"],
    ),
    (
        "profound-prophylaxis",
        "ASCO/IDSA 2018 prophylaxis: profound <0.1 expected >7 days",
        [temp(37.0, 30), anc(0.05, 2)],
        "Severe neutropenia without fever",
        "warning",
        ["Repeat CBC with differential"],
        ["Profound neutropenia now", "more than 7 days"],
    ),
    (
        "missing-temperature-severe",
        "missing temperature: FN cannot be excluded",
        [anc(0.3, 2)],
        "no temperature recorded: check for fever",
        "warning",
        ["Repeat CBC with differential"],
        ["febrile neutropenia cannot be excluded"],
    ),
    (
        "missing-temperature-moderate",
        "missing temperature with ANC <1.0: FN cannot be excluded",
        [anc(0.8, 2)],
        "No temperature in the last 24 h: febrile neutropenia not excluded (ANC 0.8)",
        "info",
        [],
        [],
    ),
    (
        "fever-no-anc",
        "fever without a current ANC: FN cannot be excluded",
        [temp(38.7, 30), anc(0.3, 24 * 5)],
        "Fever 38.7 °C, no current ANC: febrile neutropenia not excluded",
        "warning",
        ["CBC with differential now"],
        ["not current"],
    ),
    (
        "nothing-recorded",
        "no ANC and no temperature, nothing on the chart that calls for counts: no card",
        [],
        "No card",
        None,
        [],
        [],
    ),
    (
        "afebrile-normal-anc",
        "afebrile with a normal ANC: no card",
        [temp(36.8, 30), anc(3.2, 2)],
        "No card",
        None,
        [],
        [],
    ),
]


def _as_complete_review(body: dict) -> dict:
    """The same chart as `cytopenia-review` prefetches it: counts in bloodCounts, temperatures in vitals."""
    prefetch = dict(body["prefetch"])
    prefetch["bloodCounts"] = prefetch.pop("neutrophils")
    return {**body, "prefetch": prefetch}


def _post(client, body, service="febrile-neutropenia"):
    response = client.post(f"/cds-services/{service}", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


@pytest.mark.parametrize(
    ("rule", "resources", "summary", "indicator", "labels", "details"),
    [v[1:] for v in VIGNETTES],
    ids=[v[0] for v in VIGNETTES],
)
def test_vignette(client, rule, resources, summary, indicator, labels, details):
    cards = _post(client, request(*resources))
    if indicator is None:
        assert cards == [], rule
        return
    first = cards[0]
    assert summary in first["summary"], (rule, first["summary"])
    assert first["indicator"] == indicator, rule
    assert [s["label"] for s in first.get("suggestions", [])] == labels, rule
    for fragment in details:
        assert fragment in first["detail"], (rule, fragment)
    if first["indicator"] == "critical":
        assert all(c["summary"].startswith("Febrile neutropenia: consider adding") for c in cards[1:]), (
            "the first-hour orders live on the febrile-neutropenia card; at most one companion, for additions"
        )
        assert len(cards) <= 2
        assert first["selectionBehavior"] == "at-most-one"
        assert first["summary"].endswith("— start empirical IV antibiotics within 1 h") and "ANC" in first["summary"]
        cultures_only = first["suggestions"][-1]["actions"]
        codes = [a["resource"]["code"]["coding"][0]["code"] for a in cultures_only if a["type"] == "create"]
        assert codes == ["600-7", "600-7", "57021-8"]
        assert cultures_only[2]["resource"]["occurrenceTiming"]["repeat"]["period"] == 1
        complete = _post(client, _as_complete_review(request(*resources)), "cytopenia-review")
        assert complete[0]["summary"] == first["summary"] and complete[0]["detail"] == first["detail"]


def test_fn_antibiotic_orders_are_structured_and_renal_adjusted(client):
    cards = _post(client, request(temp(38.6, 30), anc(0.2, 2)))
    cefepime = cards[0]["suggestions"][0]["actions"][0]["resource"]
    assert cefepime["resourceType"] == "MedicationRequest"
    assert cefepime["medicationCodeableConcept"]["coding"][0]["code"] == "1665088"
    dosage = cefepime["dosageInstruction"][0]
    assert dosage["doseAndRate"][0]["doseQuantity"] == {
        "value": 2.0,
        "unit": "g",
        "system": "http://unitsofmeasure.org",
        "code": "g",
    }
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 8.0, "periodUnit": "h"}
    assert "Adjust for renal function" in dosage["text"]
    assert cefepime["subject"] == {"reference": "Patient/fn-patient"} and cefepime["encounter"] == {
        "reference": "Encounter/enc-now"
    }
    meropenem = cards[0]["suggestions"][1]["actions"][0]["resource"]
    assert meropenem["medicationCodeableConcept"]["coding"][0]["code"] == "1165713"


def test_vancomycin_indication_adds_weight_based_vancomycin_to_each_order_set(client):
    cards = _post(client, request(temp(38.9, 30), anc(0.1, 2), bp(82), weight(80)))
    first_set = cards[0]["suggestions"][0]
    assert first_set["label"] == CEFEPIME + " + vancomycin" + FIRST_HOUR
    dosage = first_set["actions"][1]["resource"]["dosageInstruction"][0]
    assert dosage["text"].startswith("1200-1600 mg for 80 kg")
    assert dosage["doseAndRate"][0]["doseRange"]["low"]["value"] == 15.0


def test_fever_lookback_is_configurable(make_app):
    body = request(temp(39.0, 30 * 60), anc(0.2, 2))
    assert _post(make_app().test_client(), body)[0]["summary"].startswith("Severe neutropenia")
    assert _post(make_app(fever_lookback_hours=48).test_client(), body)[0]["summary"].startswith(FN)


def test_missing_required_prefetch_is_412(client):
    response = client.post("/cds-services/febrile-neutropenia", json=request(temp(38.6, 30), omit=("vitals",)))
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_the_narrower_service_is_opt_in_unlisted_by_default_and_keeps_answering(client):
    listed = {s["id"] for s in client.get("/cds-services").get_json()["services"]}
    assert "cytopenia-review" in listed and "febrile-neutropenia" not in listed
    assert _post(client, request(temp(38.6, 30), anc(0.2, 2)))[0]["indicator"] == "critical"


def test_discovery_describes_the_service_when_a_site_enables_it(make_app):
    client = make_app(services_enabled=["cytopenia-review", "febrile-neutropenia"]).test_client()
    document = client.get("/cds-services").get_json()
    assert_valid("discovery", document)
    service = next(s for s in document["services"] if s["id"] == "febrile-neutropenia")
    assert service["hook"] == "patient-view"
    assert "8331-1" in service["prefetch"]["vitals"] and "AllergyIntolerance" in service["prefetch"]["allergies"]
    assert "status=active" in service["prefetch"]["medications"]


def test_unusable_temperature_is_said_on_the_card(client):
    bad = observation("8331-1", 38.9, "mmol/L", 30)
    cards = _post(client, request(bad, anc(0.3, 2)))
    assert "Data not used" in cards[0]["detail"] and "no temperature" in cards[0]["summary"]
