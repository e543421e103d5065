"""patient-view: the chart is opened; say whether the counts show a cytopenia, how bad, and what next."""

from __future__ import annotations

from cards.app_link import with_app_link
from cards.cytopenia import cytopenia_cards
from cds_service.clinical.context import ChartCoverage, chart_context
from cds_service.clinical.cytopenia import assess
from cds_service.hooks.service import REPORTS, CdsService
from cds_service.request import HookCall, Prefetch
from fhir_mappings import read_record
from fhir_mappings.knowledge import lab_codes

PATIENT = "{{context.patientId}}"


def _lab_query(count: int) -> str:
    """Only the blood-count codes this service reads, newest first (never 'all Observations')."""
    codes = ",".join(
        f"http://loinc.org|{code}"
        for code, lab in lab_codes().items()
        if lab.analyte.value not in ("body_temperature", "body_weight", "systolic_blood_pressure")
    )
    return f"Observation?patient={PATIENT}&code={codes}&_sort=-date&_count={count}"


PREFETCH = (
    Prefetch("patient", f"Patient/{PATIENT}", required=True),
    Prefetch("bloodCounts", _lab_query(200), required=True),
    REPORTS,
    Prefetch("pregnancy", f"Observation?patient={PATIENT}&code=http://loinc.org|82810-3&_sort=-date&_count=5"),
    Prefetch("conditions", f"Condition?patient={PATIENT}&_count=100"),
    Prefetch("medications", f"MedicationRequest?patient={PATIENT}&status=active&_count=100"),
)


CONTEXT_KEYS = ("conditions", "medications")
APP_LINKED = frozenset({"neutropenia", "pancytopenia"})  # the cards whose depth is the app's trend and scores


def review(call: HookCall) -> list:
    """Gaps in the chart context are told per card as 'not checked' (ChartCoverage), so only gaps in
    the counts themselves can make the data-gap card."""
    record = read_record(
        call.data.first("patient", "Patient"),
        call.data.resources("bloodCounts", REPORTS.key, "pregnancy", *CONTEXT_KEYS),
        call.patient_id,
        call.data.issues_except(REPORTS.key, "pregnancy", *CONTEXT_KEYS),
    )
    assessment = assess(record, call.as_of)
    coverage = ChartCoverage(
        **{key: key in call.data.by_key for key in CONTEXT_KEYS},
        reasons=tuple(f"{issue.source}: {issue.problem}" for issue in call.data.issues_about(*CONTEXT_KEYS)),
    )
    contexts = chart_context(assessment, record, coverage)
    cards = cytopenia_cards(assessment, call.patient_id, call.encounter_id, contexts)
    return [with_app_link(c, call.app_launch_url, c.finding) if c.finding in APP_LINKED else c for c in cards]


SERVICE = CdsService(
    id="cytopenia-review",
    hook="patient-view",
    title="Cytopenia review",
    description=(
        "Reads the patient's blood counts (WBC, ANC or differential, lymphocytes, haemoglobin, platelets) and "
        "reports neutropenia, leukopenia, lymphopenia, anaemia, thrombocytopenia and pancytopenia with their "
        "CTCAE v5.0 grade, WHO 2024 anaemia cut-off, trend and evidence, and suggests the next orders to consider."
    ),
    handler=review,
    prefetch=PREFETCH,
    usage_requirements=(
        "FHIR R4 Patient, Observation (LOINC-coded blood counts), Condition and MedicationRequest read access."
    ),
)
