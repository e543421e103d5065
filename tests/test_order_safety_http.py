"""order-select / order-sign vignettes through the HTTP API: myelotoxic drugs, G-CSF and antibiotics."""

from __future__ import annotations

import copy
import html
import uuid
from datetime import timedelta

import pytest

from tests.conftest import AS_OF, assert_valid, load_fixture

SERVICE_IDS = {"order-select": "myelotoxic-order-select", "order-sign": "myelotoxic-order-sign"}


def url(body: dict) -> str:
    return f"/cds-services/{SERVICE_IDS[body['hook']]}"


PATIENT_ID = "p-order-1"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UNITS = {"751-8": "10*9/L", "777-3": "10*9/L", "29463-7": "kg"}


def _time(days_ago: float) -> str:
    return (AS_OF - timedelta(days=days_ago)).isoformat()


def result(code: str, value: float, days_ago: float = 1) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"obs-{uuid.uuid4().hex[:12]}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": _time(days_ago),
        "valueQuantity": {
            "value": value,
            "unit": UNITS[code],
            "system": "http://unitsofmeasure.org",
            "code": UNITS[code],
        },
    }


def anc(value: float, days_ago: float = 1) -> dict:
    return result("751-8", value, days_ago)


def platelets(value: float, days_ago: float = 1) -> dict:
    return result("777-3", value, days_ago)


def medication(
    id_: str,
    rxcui: str | None = None,
    text: str | None = None,
    status: str = "draft",
    authored_days_ago: float = 0,
    **extra,
) -> dict:
    concept = {}
    if rxcui:
        concept["coding"] = [{"system": RXNORM, "code": rxcui}]
    if text:
        concept["text"] = text
    return {
        "resourceType": "MedicationRequest",
        "id": id_,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "authoredOn": _time(authored_days_ago),
        "medicationCodeableConcept": concept,
        **extra,
    }


def condition(text: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"c-{uuid.uuid4().hex[:8]}",
        "code": {"text": text},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }


def bundle(resources) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def request(drafts, counts=(), meds=(), conditions=(), hook="order-sign", selections=None, omit=()) -> dict:
    context = {
        "userId": "Practitioner/1",
        "patientId": PATIENT_ID,
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]},
    }
    if hook == "order-select":
        context["selections"] = (
            selections if selections is not None else [f"MedicationRequest/{d['id']}" for d in drafts]
        )
    prefetch = {
        "patient": {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female", "birthDate": "1970-05-01"},
        "counts": bundle(counts),
        "medications": bundle(meds),
        "conditions": bundle(conditions),
    }
    for key in omit:
        del prefetch[key]
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch}


def cards(client, body) -> list[dict]:
    response = client.post(url(body), json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = response.get_json()
    assert_valid("response", document)
    return document["cards"]


def one_card(client, body) -> dict:
    found = cards(client, body)
    assert len(found) == 1, [c["summary"] for c in found]
    return found[0]


def plain(card: dict) -> str:
    """The detail as a reader sees it: Markdown escapes and HTML entities removed."""
    return html.unescape(card["detail"].replace("\\", ""))


def actions(card: dict) -> list[dict]:
    return [a for s in card.get("suggestions", ()) for a in s["actions"]]


def clozapine_draft() -> dict:
    return medication("cloz-draft", "2626")


def on_clozapine(months: float = 2) -> dict:
    return medication("cloz-active", "2626", status="active", authored_days_ago=months * 30.5)


DUFFY_NULL = condition("Duffy-null phenotype Fy(a-b-)")


# --- discovery ------------------------------------------------------------------------------


def test_discovery_lists_each_hook_under_its_own_id(client):
    """The CDS Hooks Sandbox stores services by URL (= id): one id listed for two hooks lost order-select."""
    document = client.get("/cds-services").get_json()
    assert_valid("discovery", document)
    listed = {s["id"]: s["hook"] for s in document["services"] if s["id"].startswith("myelotoxic-")}
    assert listed == {"myelotoxic-order-select": "order-select", "myelotoxic-order-sign": "order-sign"}
    ids = [s["id"] for s in document["services"]]
    assert len(ids) == len(set(ids))
    service = next(s for s in document["services"] if s["id"] == "myelotoxic-order-select")
    assert "_sort=-date" in service["prefetch"]["counts"] and "751-8" in service["prefetch"]["counts"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_the_retired_id_still_answers_both_hooks_during_its_deprecation(client, hook):
    body = request([clozapine_draft()], [anc(0.3)], [on_clozapine()], hook=hook)
    response = client.post("/cds-services/myelotoxic-order-check", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    [card] = response.get_json()["cards"]
    assert card["indicator"] == "critical" and "severe neutropenia" in card["summary"]


def test_a_hook_sent_to_the_other_hooks_id_is_refused(client):
    body = request([clozapine_draft()], [anc(0.3)], hook="order-sign")
    response = client.post("/cds-services/myelotoxic-order-select", json=body)
    assert response.status_code == 400


# --- clozapine, general population ------------------------------------------------------------


@pytest.mark.parametrize("value", [2.4, 1.5])
def test_clozapine_in_the_normal_range_gets_no_card(client, value):
    assert cards(client, request([clozapine_draft()], [anc(value)], [on_clozapine()])) == []


@pytest.mark.parametrize("value", [1.49, 1.0])
def test_clozapine_mild_neutropenia_continue_with_three_times_weekly_monitoring(client, value):
    card = one_card(client, request([clozapine_draft()], [anc(value)], [on_clozapine()]))
    assert card["indicator"] == "info"
    assert "mild neutropenia: continue" in card["summary"]
    assert "Three times weekly" in plain(card)
    assert not any(a["type"] == "delete" for a in actions(card))


@pytest.mark.parametrize("value", [0.99, 0.5])
def test_clozapine_moderate_neutropenia_interrupt_and_consult(client, value):
    card = one_card(client, request([clozapine_draft()], [anc(value)], [on_clozapine()]))
    assert card["indicator"] == "warning"
    assert "moderate neutropenia: interrupt, haematology consult" in card["summary"]
    kinds = {(a["type"], a.get("resourceId") or a["resource"]["code"]["text"]) for a in actions(card)}
    assert ("delete", "MedicationRequest/cloz-draft") in kinds
    assert ("create", "Referral to haematology") in kinds
    assert ("create", "CBC with differential") in kinds
    assert "Daily until ANC ≥1.0" in plain(card)
    assert "monthly" not in plain(card) and "Monitoring interval" not in plain(card), "one instruction: the band's"


def test_clozapine_severe_neutropenia_is_critical_and_says_no_rechallenge(client):
    card = one_card(client, request([clozapine_draft()], [anc(0.49)], [on_clozapine()]))
    assert card["indicator"] == "critical"
    assert "severe neutropenia: interrupt" in card["summary"]
    assert "do not rechallenge" in plain(card)
    assert {r["code"] for r in card["overrideReasons"]} >= {
        "benefit-outweighs-risk",
        "haematology-agrees",
        "count-verified-elsewhere",
        "duffy-null-documented",
    }


def test_clozapine_new_start_below_the_normal_range_is_a_warning(client):
    card = one_card(client, request([clozapine_draft()], [anc(1.2)]))
    assert card["indicator"] == "warning"
    assert "New start" in plain(card)


# --- clozapine, benign ethnic neutropenia (Duffy-null) --------------------------------------------


@pytest.mark.parametrize("value", [1.2, 1.0])
def test_ben_clozapine_at_or_above_1_0_gets_no_card(client, value):
    assert cards(client, request([clozapine_draft()], [anc(value)], [on_clozapine()], [DUFFY_NULL])) == []


def test_ben_clozapine_500_to_999_continue_with_haematology_consult(client):
    card = one_card(client, request([clozapine_draft()], [anc(0.99)], [on_clozapine()], [DUFFY_NULL]))
    assert card["indicator"] == "warning"
    assert "BEN neutropenia: continue, haematology consult" in card["summary"]
    assert not any(a["type"] == "delete" for a in actions(card))
    assert any(
        a["type"] == "create" and a["resource"]["code"]["text"] == "Referral to haematology" for a in actions(card)
    )


@pytest.mark.parametrize("value", [0.49, 0.2])
def test_ben_clozapine_below_500_interrupt(client, value):
    card = one_card(client, request([clozapine_draft()], [anc(value)], [on_clozapine()], [DUFFY_NULL]))
    assert card["indicator"] == "critical"
    assert "BEN severe neutropenia: interrupt" in card["summary"]


def test_ben_new_start_needs_two_baseline_ancs(client):
    card = one_card(client, request([clozapine_draft()], [anc(1.3)], conditions=[DUFFY_NULL]))
    assert "1 baseline ANC on record" in card["summary"]
    assert cards(client, request([clozapine_draft()], [anc(1.3, 4), anc(1.25)], conditions=[DUFFY_NULL])) == []


# --- clozapine: missing and stale ANC ------------------------------------------------------------


def test_clozapine_without_any_anc_asks_for_one(client):
    card = one_card(client, request([clozapine_draft()], [platelets(250)]))
    assert card["indicator"] == "warning"
    assert "no ANC on record" in card["summary"]
    [cbc] = [a for a in actions(card) if a["type"] == "create"]
    assert cbc["resource"]["code"]["coding"][0]["code"] == "57021-8"
    # A first ANC is no repeat: the drafted order names the test, not a "repeat" the chart has no first of.
    assert cbc["description"] == "Draft order: CBC with differential"
    assert cbc["resource"]["code"]["text"] == "CBC with differential"
    assert "not a statement that the counts are normal" in plain(card)


def test_clozapine_stale_anc_is_not_normal(client):
    card = one_card(client, request([clozapine_draft()], [anc(2.5, days_ago=10)], [on_clozapine(months=2)]))
    assert card["indicator"] == "warning"
    assert "10 days old, ANC due" in card["summary"]
    assert "not current" in plain(card)


def test_clozapine_monthly_interval_after_twelve_months(client):
    assert cards(client, request([clozapine_draft()], [anc(2.5, days_ago=20)], [on_clozapine(months=24)])) == []
    card = one_card(client, request([clozapine_draft()], [anc(2.5, days_ago=40)], [on_clozapine(months=24)]))
    assert "monthly" in plain(card)


def test_real_sandbox_order_sign_for_whitney_ortiz_asks_for_a_baseline_anc(client):
    body = load_fixture("sandbox/order-sign-clozapine.json")
    card = one_card(client, body)
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Clozapine: ANC not sent")
    assert "RxNorm product 197535" in plain(card)
    assert "prefetch 'counts'" in plain(card)
    assert "REMS" not in card["summary"]
    kinds = {a["type"]: a for a in actions(card)}
    assert kinds["create"]["resource"]["subject"]["reference"] == "Patient/2744ab6f-91dd-4e4f-8208-fe52ee2c27d1"
    assert kinds["delete"]["resourceId"] == "MedicationRequest/request-123"


# --- recognition ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draft, how",
    [
        (medication("d1", "2626"), "RxNorm ingredient 2626"),
        (medication("d1", "197535"), "RxNorm product 197535"),
        (medication("d1", text="CloZAPine 25 mg tablet"), "ingredient name in the text"),
    ],
)
def test_clozapine_is_recognised_by_ingredient_product_or_text(client, draft, how):
    card = one_card(client, request([draft], [anc(0.7)], [on_clozapine()]))
    assert how in plain(card)


def test_contained_medication_and_single_object_category_are_read(client):
    draft = {
        "resourceType": "MedicationRequest",
        "id": "d-ref",
        "status": "draft",
        "intent": "order",
        "category": {"coding": [{"code": "community"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "contained": [
            {"resourceType": "Medication", "id": "m1", "code": {"coding": [{"system": RXNORM, "code": "282388"}]}}
        ],
        "medicationReference": {"reference": "#m1"},
    }
    card = one_card(client, request([draft], [anc(0.8), platelets(200)]))
    assert card["summary"].startswith("Imatinib: ANC 0.8")


# --- BCR-ABL TKIs (ELN 2016) ------------------------------------------------------------------


def test_imatinib_stop_below_anc_1_0_and_resume_at_1_5_and_75(client):
    card = one_card(client, request([medication("tki", "282388")], [anc(0.9), platelets(120)]))
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Imatinib: ANC 0.9 ×10⁹/L (stop below 1.0): ELN 2016 says stop")
    assert "ANC ≥1.5 and platelets ≥75" in plain(card)
    assert cards(client, request([medication("tki", "282388")], [anc(1.0), platelets(50)])) == []


def test_nilotinib_stop_for_platelets_below_50(client):
    card = one_card(client, request([medication("tki", "662281")], [anc(2.0), platelets(45)]))
    assert "platelets 45 ×10⁹/L (stop below 50)" in card["summary"]
    assert "ANC >1.0 and platelets >50" in plain(card)


def test_dasatinib_stops_below_anc_0_5_only(client):
    assert cards(client, request([medication("tki", "475342")], [anc(0.8), platelets(100)])) == []
    card = one_card(client, request([medication("tki", "475342")], [anc(0.4), platelets(100)]))
    assert "ANC ≥1.0 and platelets ≥50" in plain(card)


@pytest.mark.parametrize(
    ("rxcui", "held_status", "value", "plt", "warned"),
    [
        ("282388", "on-hold", 1.2, 100, True),
        ("282388", "stopped", 1.5, 75, False),
        ("282388", "on-hold", 1.5, 74, True),
        ("662281", "on-hold", 1.0, 80, True),
        ("662281", "on-hold", 1.01, 51, False),
        ("475342", "stopped", 0.99, 60, True),
        ("475342", "stopped", 1.0, 50, False),
    ],
    ids=[
        "imatinib-1.2",
        "imatinib-1.5-75",
        "imatinib-plt-74",
        "nilotinib-1.0",
        "nilotinib-1.01",
        "dasatinib-0.99",
        "dasatinib-1.0-50",
    ],
)
def test_tki_restart_is_checked_against_the_resume_thresholds_of_its_row(
    client, rxcui, held_status, value, plt, warned
):
    held = medication("tki-old", rxcui, status=held_status, authored_days_ago=40)
    found = cards(client, request([medication("tki", rxcui)], [anc(value), platelets(plt)], [held]))
    if warned:
        [card] = found
        assert card["indicator"] == "warning" and " restart at ANC " in card["summary"]
        assert "resumes at ANC" in card["summary"] and "MedicationRequest/tki-old is " + held_status in plain(card)
    else:
        assert found == []


def test_a_preliminary_count_is_used_by_the_order_check_and_labelled(client):
    preliminary = anc(0.9)
    preliminary["status"] = "preliminary"
    card = one_card(client, request([medication("tki", "282388")], [preliminary, platelets(120)]))
    assert "ANC 0.9 ×10⁹/L (stop below 1.0)" in card["summary"] and "0.9 ×10⁹/L **preliminary**" in card["detail"]


def test_tki_first_start_at_anc_1_2_is_not_a_restart(client):
    assert cards(client, request([medication("tki", "282388")], [anc(1.2), platelets(100)])) == []


def test_the_order_check_asks_for_held_and_stopped_orders(client):
    service = next(s for s in client.get("/cds-services").get_json()["services"] if s["id"] == "myelotoxic-order-sign")
    assert "status=active,on-hold,stopped" in service["prefetch"]["medications"]


def test_tki_with_stale_counts_is_told_not_checked(client):
    card = one_card(client, request([medication("tki", "282388")], [anc(2.0, 30), platelets(200, 30)]))
    assert card["indicator"] == "info"
    assert "ANC 30 days old, platelets 30 days old" in card["summary"]


# --- deferiprone, antithyroid and other agranulocytosis drugs --------------------------------------


def test_deferiprone_by_text_interrupt_below_anc_1_5(client):
    card = one_card(client, request([medication("dfp", text="Ferriprox (deferiprone) 500 mg tablet")], [anc(1.4)]))
    assert card["indicator"] == "warning"
    assert "below 1.5: interrupt deferiprone" in card["summary"]
    assert "weekly" in plain(card)
    assert cards(client, request([medication("dfp", text="deferiprone 1000 mg")], [anc(1.5)])) == []


def test_methimazole_warns_at_severe_neutropenia(client):
    card = one_card(client, request([medication("mmi", "6835")], [anc(0.3)]))
    assert card["indicator"] == "warning"
    assert "agranulocytosis range" in card["summary"]


def test_methimazole_informs_when_anc_is_falling_below_the_lower_limit(client):
    card = one_card(client, request([medication("mmi", "6835")], [anc(1.8, 6), anc(1.2, 1)]))
    assert card["indicator"] == "info"
    assert "ANC falling, 1.8 to 1.2" in card["summary"]
    assert cards(client, request([medication("mmi", "6835")], [anc(2.4, 6), anc(2.2, 1)])) == []


# --- cytotoxic chemotherapy -------------------------------------------------------------------


def test_chemotherapy_with_grade_3_platelets_asks_to_check_the_protocol(client):
    card = one_card(client, request([medication("cyc", "3002")], [anc(2.0), platelets(40)]))
    assert card["indicator"] == "warning"
    assert "platelets 40 (CTCAE v5 grade 3)" in card["summary"]
    assert "treatment parameters" in card["summary"]
    assert cards(client, request([medication("cyc", "3002")], [anc(1.6), platelets(120)])) == []


# --- G-CSF ------------------------------------------------------------------------------------


def test_pegfilgrastim_within_14_days_before_chemotherapy_warns(client):
    chemo = medication("chemo-1", "3002", status="active", dosageInstruction=[{"timing": {"event": [_time(-5)]}}])
    card = one_card(client, request([medication("peg", "338036")], [anc(3.0)], [chemo]))
    assert card["indicator"] == "warning"
    assert "5.0 days before" in card["summary"]
    later = medication("chemo-2", "3002", status="active", dosageInstruction=[{"timing": {"event": [_time(-20)]}}])
    assert cards(client, request([medication("peg", "338036")], [anc(3.0)], [later])) == []


def test_pegfilgrastim_drafted_with_same_day_chemotherapy_gets_one_timing_card(client):
    found = cards(
        client, request([medication("peg", "1161380"), medication("cyc", "3002")], [anc(3.0), platelets(200)])
    )
    assert [c["summary"].split(" planned")[0] for c in found] == ["Pegfilgrastim"]


def _filgrastim(mcg: float) -> dict:
    dosage = [
        {
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": mcg, "unit": "mcg"}}],
        }
    ]
    return medication("fil", "68442", dosageInstruction=dosage)


@pytest.mark.parametrize(
    "mcg", [300, 480, 600, 660, 270], ids=["5/kg", "8/kg-vial", "10/kg", "+10%-of-10", "-10%-of-5"]
)
def test_filgrastim_5_to_10_mcg_per_kg_per_day_within_tolerance_is_accepted(client, mcg):
    assert cards(client, request([_filgrastim(mcg)], [result("29463-7", 60)])) == []


def test_filgrastim_above_10_mcg_per_kg_informs_with_the_label_range(client):
    card = one_card(client, request([_filgrastim(700)], [result("29463-7", 60)]))
    assert card["indicator"] == "info"
    assert card["summary"] == "Filgrastim 700 mcg/day is +17 % from 10 mcg/kg/day (600 mcg at 60 kg)"
    assert "the label range is 5-10 mcg/kg/day (300-600 mcg/day)" in plain(card)


def test_filgrastim_below_5_mcg_per_kg_informs(client):
    card = one_card(client, request([_filgrastim(240)], [result("29463-7", 60)]))
    assert card["summary"] == "Filgrastim 240 mcg/day is -20 % from 5 mcg/kg/day (300 mcg at 60 kg)"


@pytest.mark.parametrize(("weights", "said"), [([], "no body weight on record"), ([45], "45 days old")])
def test_filgrastim_without_a_current_weight_is_said_not_flagged(client, weights, said):
    card = one_card(client, request([_filgrastim(480)], [result("29463-7", 60, days_ago=d) for d in weights]))
    assert card["indicator"] == "info" and card["summary"].startswith("Filgrastim dose not checked")
    assert said in card["summary"]


# --- antibiotics in neutropenia ------------------------------------------------------------------


def test_fluoroquinolone_for_fn_while_on_quinolone_prophylaxis_warns(client):
    draft = medication("levo", "311296", reasonCode=[{"text": "Febrile neutropenia"}])
    prophylaxis = medication("cipro", "309309", status="active", authored_days_ago=10)
    card = one_card(client, request([draft], [anc(0.3)], [prophylaxis]))
    assert card["indicator"] == "warning"
    assert "already on quinolone prophylaxis" in card["summary"]
    assert "MedicationRequest/cipro" in plain(card)
    assert cards(client, request([draft], [anc(0.3)])) == []


def test_vancomycin_in_neutropenia_without_indication_is_not_routine(client):
    card = one_card(client, request([medication("vanc", "1807513")], [anc(0.3)]))
    assert card["indicator"] == "info"
    assert "not routine" in card["summary"]
    assert actions(card) == [
        {
            "type": "delete",
            "description": "Remove the draft order for vancomycin",
            "resourceId": "MedicationRequest/vanc",
        }
    ]
    assert (
        cards(
            client,
            request(
                [medication("vanc", "1807513")], [anc(0.3)], conditions=[condition("Community-acquired pneumonia")]
            ),
        )
        == []
    )
    assert cards(client, request([medication("vanc", "1807513")], [anc(3.1)])) == []


# --- hook behaviour ---------------------------------------------------------------------------


def test_order_select_evaluates_only_the_selected_drafts(client):
    drafts = [clozapine_draft(), medication("mmi", "6835")]
    card = one_card(
        client, request(drafts, [anc(0.3)], [on_clozapine()], hook="order-select", selections=["MedicationRequest/mmi"])
    )
    assert card["summary"].startswith("Methimazole")


def test_order_select_with_an_empty_draft_bundle_returns_no_cards(client):
    body = request([], hook="order-select", selections=[])
    body["context"]["draftOrders"] = {"resourceType": "Bundle"}
    assert cards(client, body) == []


def test_order_select_with_a_selection_not_in_the_drafts_is_400(client):
    body = request([clozapine_draft()], [anc(2.0)], hook="order-select", selections=["MedicationRequest/nope"])
    response = client.post(url(body), json=body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "MedicationRequest/nope" in outcome["issue"][0]["details"]["text"]


def test_a_draft_listed_twice_and_a_service_request_give_one_card(client):
    body = request([clozapine_draft(), clozapine_draft()], [anc(0.7)], [on_clozapine()])
    body["context"]["draftOrders"]["entry"].append(
        {
            "resource": {
                "resourceType": "ServiceRequest",
                "id": "sr",
                "status": "draft",
                "intent": "order",
                "code": {"text": "Chest X-ray"},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
            }
        }
    )
    assert len(cards(client, body)) == 1


def test_missing_patient_prefetch_is_412(client):
    body = request([clozapine_draft()], [anc(2.0)], omit=("patient",))
    body = copy.deepcopy(body)
    response = client.post(url(body), json=body)
    assert response.status_code == 412
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_malformed_draft_members_are_tolerated_not_a_500(client):
    odd = medication(
        "odd",
        "68442",
        medicationReference="Medication/x",
        reasonCode="fever",
        dosageInstruction=[
            {"timing": ["daily"], "doseAndRate": [{"doseQuantity": {"value": "480", "unit": "mcg"}}]},
            {
                "timing": {"repeat": {"frequency": "two", "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": True, "unit": "mcg"}}],
            },
        ],
        dispenseRequest=[1, 2],
    )
    body = request(
        [odd, "not a resource", {"resourceType": "MedicationRequest", "medicationReference": "x"}],
        [result("29463-7", 70)],
    )
    card = one_card(client, body)
    assert card["summary"] == "Filgrastim dose not checked: no dose in micrograms or milligrams on the order"
