"""patient-view: the chart is opened; the whole answer about this patient's blood counts.

The one complete patient-view service: cytopenias, febrile neutropenia with its first-hour orders,
a drug in a hold band, and the data gaps that matter, one card per problem (`cards.patient_view`).
It never leaves a problem to another service, because it cannot know which services the EHR called.
"""

from __future__ import annotations

from dataclasses import replace

from cards.app_link import with_app_link
from cards.patient_view import patient_view_cards
from cds_service.clinical.context import ChartCoverage, chart_context
from cds_service.clinical.cytopenia import assess
from cds_service.clinical.drug_safety import drug_holds
from cds_service.clinical.expected_counts import counts_expected
from cds_service.clinical.febrile_neutropenia import assess as assess_febrile_neutropenia
from cds_service.clinical.findings import Assessment
from cds_service.hooks.febrile_neutropenia import VITALS_QUERY
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
    Prefetch("vitals", VITALS_QUERY),
    REPORTS,
    Prefetch("pregnancy", f"Observation?patient={PATIENT}&code=http://loinc.org|82810-3&_sort=-date&_count=5"),
    Prefetch("conditions", f"Condition?patient={PATIENT}&_count=100"),
    Prefetch("medications", f"MedicationRequest?patient={PATIENT}&status=active&_count=100"),
    Prefetch("allergies", f"AllergyIntolerance?patient={PATIENT}&_count=100"),
    Prefetch("encounters", f"Encounter?patient={PATIENT}&_sort=-date&_count=20"),
)


CONTEXT_KEYS = ("conditions", "medications")
FEVER_KEYS = ("vitals", "allergies", "encounters")
# The cards whose depth is the app's trend and scores.
APP_LINKED = frozenset({"febrile_neutropenia", "neutropenia", "pancytopenia"})


def review(call: HookCall) -> list:
    """Gaps in the chart context are told per card as 'not checked' (ChartCoverage), so only gaps in
    the counts themselves can make the data-gap card."""
    return review_with_assessment(call)[0]


def review_with_assessment(call: HookCall) -> tuple[list, Assessment]:
    """The cards and the cytopenia assessment they rest on (the population screen's grade and value
    come from it, so it does not read and assess the record a second time)."""
    record = read_record(
        call.data.first("patient", "Patient"),
        call.data.resources("bloodCounts", REPORTS.key, "pregnancy", *CONTEXT_KEYS, *FEVER_KEYS),
        call.patient_id,
        call.data.issues_except(REPORTS.key, "pregnancy", *CONTEXT_KEYS, *FEVER_KEYS),
    )
    assessment = assess(record, call.as_of)
    coverage = ChartCoverage(
        **{key: key in call.data.by_key for key in CONTEXT_KEYS},
        reasons=tuple(f"{issue.source}: {issue.problem}" for issue in call.data.issues_about(*CONTEXT_KEYS)),
    )
    contexts = chart_context(assessment, record, coverage)
    lookback = call.settings.fever_lookback_hours if call.settings else None
    fn = assess_febrile_neutropenia(record, call.as_of, lookback, conditions_available="conditions" in call.data.by_key)
    fn = replace(fn, issues=fn.issues + call.data.issues_about(*FEVER_KEYS))
    cards = patient_view_cards(
        assessment,
        call.patient_id,
        call.encounter_id,
        contexts,
        fn,
        drug_holds(record, call.as_of),
        counts_expected(record, fn.fever.febrile),
    )
    linked = [with_app_link(c, call.app_launch_url, c.finding) if c.finding in APP_LINKED else c for c in cards]
    return linked, assessment


SERVICE = CdsService(
    id="cytopenia-review",
    hook="patient-view",
    title="Cytopenia review",
    description=(
        "The complete patient-view answer on blood counts, one card per problem: febrile neutropenia (IDSA 2010 "
        "and CTCAE v5.0) with its first-hour orders; clozapine or a BCR-ABL TKI in a hold band; pancytopenia, "
        "neutropenia, leukopenia, lymphopenia, anaemia and thrombocytopenia with their CTCAE v5.0 grade, WHO 2024 "
        "anaemia cut-off, trend and chart context; and the next orders to consider, each offered once."
    ),
    handler=review,
    prefetch=PREFETCH,
    usage_requirements=(
        "FHIR R4 read access to Patient, Observation (LOINC blood counts, temperatures, blood pressure, weight), "
        "Condition, MedicationRequest, AllergyIntolerance and Encounter."
    ),
)
