"""order-select and order-sign: a drafted myelotoxic drug or neutropenia antibiotic against the latest counts.

One declaration per hook, each with its own id: order-select checks the selected drafts, order-sign all drafts.
Clients such as the CDS Hooks Sandbox key services by URL (= id), so one id listed twice loses a hook.
Counts, medications and conditions are optional prefetch: when the EHR sends none (the CDS Hooks
Sandbox sends only the Patient), the card says so instead of failing or staying silent.
"""

from __future__ import annotations

from cards.order_safety import order_cards
from cds_service.clinical.order_safety import CONDITIONS, COUNTS, MEDICATIONS, check_orders, patient_state
from cds_service.hooks.service import REPORTS, CdsService
from cds_service.request import HookCall, InvalidRequest, Prefetch
from fhir_mappings import read_record
from fhir_mappings.knowledge import lab_codes
from fhir_mappings.orders import DraftOrder, UnknownSelection, read_draft_orders, selected

SERVICE_IDS = {"order-select": "myelotoxic-order-select", "order-sign": "myelotoxic-order-sign"}
# Listed under one id for both hooks until 0.2.0; it still answers (dispatch on the body's hook) but is not
# listed, because listing it brings the overwrite back. Remove after the deprecation period (CHANGELOG.md).
RETIRED_ID = "myelotoxic-order-check"
PATIENT = "{{context.patientId}}"
COUNT_ANALYTES = frozenset(
    {
        "white_blood_cells",
        "absolute_neutrophil_count",
        "segmented_neutrophils",
        "band_neutrophils",
        "neutrophils_percent",
        "segmented_neutrophils_percent",
        "band_neutrophils_percent",
        "platelets",
        "body_weight",
    }
)
KEYS = {COUNTS: "counts", MEDICATIONS: "medications", CONDITIONS: "conditions"}


def _count_query() -> str:
    """ANC, differential, WBC, platelets and weight only, newest first."""
    codes = ",".join(
        f"http://loinc.org|{code}" for code, lab in lab_codes().items() if lab.analyte.value in COUNT_ANALYTES
    )
    return f"Observation?patient={PATIENT}&code={codes}&_sort=-date&_count=100"


PREFETCH = (
    Prefetch("patient", f"Patient/{PATIENT}", required=True),
    Prefetch(KEYS[COUNTS], _count_query()),
    REPORTS,
    Prefetch(KEYS[MEDICATIONS], f"MedicationRequest?patient={PATIENT}&status=active,on-hold,stopped&_count=100"),
    Prefetch(KEYS[CONDITIONS], f"Condition?patient={PATIENT}&_count=100"),
)


def _drafts_to_check(call: HookCall) -> tuple[tuple[DraftOrder, ...], tuple[DraftOrder, ...]]:
    drafts = read_draft_orders(call.context.get("draftOrders"))
    if call.hook != "order-select" or not drafts:
        return drafts, drafts
    try:
        return drafts, selected(drafts, list(call.context.get("selections") or ()))
    except UnknownSelection as error:
        raise InvalidRequest(str(error), ["context.selections"]) from None


def check(call: HookCall) -> list:
    drafts, to_check = _drafts_to_check(call)
    if not any(d.medication for d in to_check):
        return []
    record = read_record(
        call.data.first("patient", "Patient"),
        call.data.resources(*KEYS.values(), REPORTS.key),
        call.patient_id,
        call.data.issues_except(REPORTS.key),
    )
    unavailable = {
        kind: f"prefetch '{key}' was not sent or failed" for kind, key in KEYS.items() if key not in call.data.by_key
    }
    alerts = check_orders(to_check, patient_state(record, call.as_of, drafts, unavailable))
    return order_cards(alerts, call.patient_id, call.encounter_id, record.issues)


DESCRIPTION = (
    "Checks drafted clozapine, BCR-ABL TKIs, deferiprone, antithyroid and other agranulocytosis drugs and cytotoxic "
    "chemotherapy against the latest ANC and platelets (clozapine label ANC tables incl. BEN, ELN 2016, CTCAE v5.0), "
    "G-CSF timing and filgrastim dose, a fluoroquinolone for febrile neutropenia on quinolone prophylaxis, and "
    "vancomycin in neutropenia without a documented indication. Missing or stale counts are stated."
)
USAGE = "FHIR R4 Patient, Observation (LOINC blood counts, body weight), MedicationRequest and Condition read access."

SERVICES = tuple(
    CdsService(
        id=service_id,
        hook=hook,
        title=f"Myelotoxic order check ({hook})",
        description=DESCRIPTION,
        handler=check,
        prefetch=PREFETCH,
        usage_requirements=USAGE,
    )
    for hook, service_id in SERVICE_IDS.items()
)
