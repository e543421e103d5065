"""Everything the service received for one patient -> one ClinicalRecord."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from cds_service.request import Json, operation_outcome_issues
from fhir_mappings.administrations import read_medication_administration
from fhir_mappings.allergies import read_allergy
from fhir_mappings.codes import NOT_READ, meaning_of
from fhir_mappings.conditions import read_condition
from fhir_mappings.cultures import read_blood_culture
from fhir_mappings.encounters import read_encounter
from fhir_mappings.facts import ClinicalRecord, DataIssue
from fhir_mappings.medications import medication_index, read_medication_request
from fhir_mappings.observations import Draw, ObservationReader, effective_time
from fhir_mappings.patient import read_patient

# The resource types whose `code` decides whether they are read, looked up once per resource.
CODED_READS = frozenset({"Observation", "DiagnosticReport", "ServiceRequest"})


def _member_keys(references: Any) -> list[str]:
    keys: list[str] = []
    for reference in references or ():
        target = reference.get("reference") if isinstance(reference, dict) else None
        if isinstance(target, str):
            keys.append(f"Observation/{target.rsplit('/', 1)[-1].removeprefix('urn:uuid:')}")
    return keys


def _draws_from_reports(reports: list[Json], panels: list[Json]) -> dict[str, Draw]:
    """Observation reference -> the group it was reported in, i.e. the same blood draw.

    A DiagnosticReport groups its `result`s; a panel Observation (CBC 58410-2) groups its
    `hasMember`s, which often carry no time of their own (FHIR example Bundle-ghp). A panel inside
    a report belongs to the report's draw, and so do its members.
    """
    draws: dict[str, Draw] = {}
    for report in reports:
        draw = Draw(f"DiagnosticReport/{report.get('id', '?')}", effective_time(report))
        for key in _member_keys(report.get("result")):
            draws[key] = draw
    for panel in panels:
        if panel.get("hasMember"):
            key = f"Observation/{panel.get('id', '?')}"
            own = Draw(key, effective_time(panel))
            draw = draws.get(key, own)
            if draw.time is None:
                draw = own
            for member in _member_keys(panel.get("hasMember")):
                draws.setdefault(member, draw)
    return draws


def read_record(
    patient: Json | None,
    resources: Iterable[Json],
    patient_id: str | None = None,
    issues: Iterable[DataIssue] = (),
) -> ClinicalRecord:
    resources = list(resources)
    # What other resources refer to is gathered first, in one pass: reports and panels (a result's draw),
    # Medications (an order's medicationReference).
    grouping: dict[str, list[Json]] = {"DiagnosticReport": [], "Observation": [], "Medication": []}
    for resource in resources:
        kind: Any = resource.get("resourceType")
        if (group := grouping.get(kind)) is not None:
            group.append(resource)
    demographics, patient_issues = read_patient(patient, patient_id)
    observations = ObservationReader(
        demographics.patient_id, _draws_from_reports(grouping["DiagnosticReport"], grouping["Observation"])
    )
    conditions = []
    medications = []
    allergies = []
    encounters = []
    administrations = []
    cultures = []
    medication_resources = medication_index(grouping["Medication"])
    all_issues = [*issues, *patient_issues]
    for resource in resources:
        kind = resource.get("resourceType")
        if kind in CODED_READS:
            meaning = meaning_of(resource.get("code"))
            if meaning.blood_culture and (culture := read_blood_culture(resource)) is not None:
                cultures.append(culture)
            if kind == "Observation" and (meaning is not NOT_READ or "component" in resource):
                observations.read(resource, meaning)
        elif kind == "Condition":
            conditions.extend(read_condition(resource))
        elif kind in ("MedicationRequest", "MedicationOrder"):
            if (medication := read_medication_request(resource, medication_resources)) is not None:
                medications.append(medication)
        elif kind == "AllergyIntolerance":
            if (allergy := read_allergy(resource)) is not None:
                allergies.append(allergy)
        elif kind == "Encounter":
            if (encounter := read_encounter(resource)) is not None:
                encounters.append(encounter)
        elif kind == "MedicationAdministration":
            if (given := read_medication_administration(resource, medication_resources)) is not None:
                administrations.append(given)
        elif kind == "OperationOutcome":
            all_issues.extend(operation_outcome_issues(resource))
    measurements = sorted(observations.measurements, key=attrgetter("time"))
    return ClinicalRecord(
        demographics=demographics,
        measurements=tuple(measurements),
        conditions=tuple(conditions),
        medications=tuple(medications),
        allergies=tuple(allergies),
        encounters=tuple(encounters),
        administrations=tuple(sorted(administrations, key=lambda a: a.time)),
        blood_cultures=tuple(cultures),
        issues=tuple(all_issues + observations.issues),
        pregnancy_status=tuple(observations.pregnancy_status),
    )
