"""MedicationAdministration -> AdministrationFact: which drug was given, and when.

Read for the febrile-neutropenia first hour (was the first antibiotic dose given?). Only a
completed or in-progress administration counts as given; a `not-done` or erroneous one is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fhir_mappings.medications import ingredient_groups, medication_concept, recognise
from fhir_mappings.resources import Json, concept_text, reference_of
from fhir_mappings.times import parse_datetime

GIVEN_STATUSES = frozenset({"completed", "in-progress"})


@dataclass(frozen=True, slots=True)
class AdministrationFact:
    ingredients: tuple[str, ...]
    groups: frozenset[str]
    text: str
    time: datetime
    source: str


def read_medication_administration(resource: Json, medications: dict[str, Json]) -> AdministrationFact | None:
    """A given dose of a recognised drug with a time; None otherwise (nothing is guessed)."""
    if resource.get("status") not in GIVEN_STATUSES:
        return None
    period = resource.get("effectivePeriod") if isinstance(resource.get("effectivePeriod"), dict) else {}
    time = parse_datetime(resource.get("effectiveDateTime")) or parse_datetime(period.get("start"))
    concept = medication_concept(resource, medications)
    recognised = recognise(concept)
    if time is None or recognised is None:
        return None
    names, _how = recognised
    return AdministrationFact(
        names, ingredient_groups(names), concept_text(concept) or ", ".join(names), time, reference_of(resource)
    )
