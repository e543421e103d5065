"""patient-view, opt-in: is this febrile neutropenia, and what must happen in the first hour?

A narrower alternative to `cytopenia-review`, which gives the same febrile-neutropenia card within the
complete answer. Not listed in discovery unless a site names it in `services_enabled`; it keeps
answering calls either way, so an EHR that registered it is never left without an answer.
Its own narrow prefetch: temperatures, neutrophil counts (or WBC + differential), weight, blood
pressure, conditions, allergies, active medications and encounters; nothing else.
"""

from __future__ import annotations

from cards.app_link import with_app_link
from cards.febrile_neutropenia import febrile_neutropenia_cards
from cards.patient_view import one_answer
from cds_service.clinical.expected_counts import counts_expected
from cds_service.clinical.febrile_neutropenia import assess
from cds_service.hooks.service import REPORTS, CdsService
from cds_service.request import HookCall, Prefetch
from fhir_mappings import Analyte, read_record
from fhir_mappings.knowledge import lab_codes

PATIENT = "{{context.patientId}}"
NEUTROPHIL_ANALYTES = frozenset(
    a.value
    for a in (
        Analyte.WHITE_BLOOD_CELLS,
        Analyte.ABSOLUTE_NEUTROPHIL_COUNT,
        Analyte.SEGMENTED_NEUTROPHILS,
        Analyte.BAND_NEUTROPHILS,
        Analyte.NEUTROPHILS_PERCENT,
        Analyte.SEGMENTED_NEUTROPHILS_PERCENT,
        Analyte.BAND_NEUTROPHILS_PERCENT,
        Analyte.MONOCYTES,
    )
)
VITAL_CODES = ("8310-5", "8331-1", "29463-7", "85354-9")
VITALS_QUERY = (
    f"Observation?patient={PATIENT}&code="
    + ",".join(f"http://loinc.org|{c}" for c in VITAL_CODES)
    + "&_sort=-date&_count=200"
)


def _codes(analytes: frozenset[str]) -> str:
    return ",".join(f"http://loinc.org|{code}" for code, lab in lab_codes().items() if lab.analyte.value in analytes)


PREFETCH = (
    Prefetch("patient", f"Patient/{PATIENT}", required=True),
    Prefetch("vitals", VITALS_QUERY, required=True),
    Prefetch(
        "neutrophils",
        f"Observation?patient={PATIENT}&code={_codes(NEUTROPHIL_ANALYTES)}&_sort=-date&_count=200",
        required=True,
    ),
    REPORTS,
    Prefetch("conditions", f"Condition?patient={PATIENT}&_count=100"),
    Prefetch("allergies", f"AllergyIntolerance?patient={PATIENT}&_count=100"),
    Prefetch("medications", f"MedicationRequest?patient={PATIENT}&status=active&_count=100"),
    Prefetch("encounters", f"Encounter?patient={PATIENT}&_sort=-date&_count=20"),
)


def evaluate(call: HookCall) -> list:
    record = read_record(
        call.data.first("patient", "Patient"),
        call.data.resources(
            "vitals", "neutrophils", REPORTS.key, "conditions", "allergies", "medications", "encounters"
        ),
        call.patient_id,
        call.data.issues_except(REPORTS.key),
    )
    lookback = call.settings.fever_lookback_hours if call.settings else None
    assessment = assess(record, call.as_of, lookback, conditions_available="conditions" in call.data.by_key)
    expected = bool(counts_expected(record, assessment.fever.febrile))
    cards = one_answer(febrile_neutropenia_cards(assessment, call.patient_id, call.encounter_id, expected))
    return [with_app_link(card, call.app_launch_url, "febrile_neutropenia") for card in cards]


SERVICE = CdsService(
    id="febrile-neutropenia",
    hook="patient-view",
    title="Febrile neutropenia only (opt-in alternative to cytopenia-review)",
    description=(
        "Reads temperatures, neutrophil counts, blood pressure, weight, conditions, allergies, active medications and "
        "encounters; says whether the IDSA 2010 and/or CTCAE v5.0 febrile-neutropenia definition is met and, if "
        "so, puts "
        "the first-hour order set (blood cultures, empirical IV anti-pseudomonal beta-lactam, allergy "
        "alternatives) and "
        "the MASCC/CISNE risk ranges in front of the clinician; warns on severe neutropenia without fever and "
        "says when "
        "missing data leave febrile neutropenia unexcluded."
    ),
    handler=evaluate,
    prefetch=PREFETCH,
    listed_by_default=False,
    usage_requirements=(
        "FHIR R4 read access to Patient, Observation (LOINC temperatures, blood pressure, weight, blood counts), "
        "Condition, AllergyIntolerance, MedicationRequest and Encounter."
    ),
)
