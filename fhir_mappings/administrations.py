"""MedicationAdministration -> AdministrationFact: which drug was given, and when.

Read for the febrile-neutropenia first hour (was the first antibiotic dose given?). Only a
completed or in-progress administration counts as given; a `not-done` or erroneous one is ignored.
"""

from __future__ import annotations

from cds_service.request import Json, reference_of
from fhir_mappings.facts import AdministrationFact
from fhir_mappings.medications import ingredient_groups, medication_concept, recognise
from fhir_mappings.resources import concept_text
from fhir_mappings.times import parse_datetime

GIVEN_STATUSES = frozenset({"completed", "in-progress"})


def read_medication_administration(resource: Json, medications: dict[str, Json]) -> AdministrationFact | None:
    """A given dose of a recognised drug with a time; None otherwise (nothing is guessed)."""
    if resource.get("status") not in GIVEN_STATUSES:
        return None
    period: Json = resource["effectivePeriod"] if isinstance(resource.get("effectivePeriod"), dict) else {}
    time = parse_datetime(resource.get("effectiveDateTime")) or parse_datetime(period.get("start"))
    concept = medication_concept(resource, medications)
    recognised = recognise(concept)
    if time is None or recognised is None:
        return None
    names, _how = recognised
    return AdministrationFact(
        names, ingredient_groups(names), concept_text(concept) or ", ".join(names), time, reference_of(resource)
    )
