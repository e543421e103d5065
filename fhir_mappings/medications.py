"""MedicationRequest -> MedicationFact: which ingredients, in which risk groups, recognised how.

Recognition order: an RxNorm ingredient code, then an RxNorm product code mapped to its
ingredients (`data/drug_products.csv`), then the ingredient's name in the text or display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cds_service.knowledge_tables import knowledge_loader, read_table
from cds_service.request import Json, reference_of
from fhir_mappings.facts import MedicationFact
from fhir_mappings.resources import clean_text, codings, concept_text
from fhir_mappings.times import parse_datetime

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


@dataclass(frozen=True, slots=True)
class _Ingredient:
    name: str
    groups: frozenset[str]


@knowledge_loader
def _ingredients() -> dict[str, _Ingredient]:
    return {
        row["ingredient"]: _Ingredient(row["ingredient"], frozenset(filter(None, row["groups"].split(";"))))
        for row in read_table("fhir_mappings", "drug_ingredients.csv")
    }


@knowledge_loader
def _ingredient_codes() -> dict[str, str]:
    return {
        row["rxcui"]: row["ingredient"] for row in read_table("fhir_mappings", "drug_ingredients.csv") if row["rxcui"]
    }


@knowledge_loader
def _products() -> dict[str, tuple[str, ...]]:
    return {
        row["rxcui"]: tuple(row["ingredients"].split(";")) for row in read_table("fhir_mappings", "drug_products.csv")
    }


@knowledge_loader
def _name_pattern() -> re.Pattern[str]:
    names = sorted(_ingredients(), key=len, reverse=True)
    return re.compile(r"(?<![a-z-])(" + "|".join(re.escape(n) for n in names) + r")(?![a-z])", re.IGNORECASE)


def recognise(concept: Json | None) -> tuple[tuple[str, ...], str] | None:
    """(ingredients, how) for a medication CodeableConcept, or None when nothing is known."""
    for coding in codings(concept):
        if coding.get("system") != RXNORM:
            continue
        code = str(coding.get("code"))
        if code in _ingredient_codes():
            return (_ingredient_codes()[code],), f"RxNorm ingredient {code}"
        if code in _products():
            return _products()[code], f"RxNorm product {code} mapped to its ingredient"
    text = concept_text(concept) or " ".join(clean_text(c.get("display") or "") for c in codings(concept))
    found = tuple(dict.fromkeys(m.lower() for m in _name_pattern().findall(text or "")))
    if found:
        return found, f"ingredient name in the text '{text[:80]}'"
    return None


def ingredient_groups(names: tuple[str, ...]) -> frozenset[str]:
    """The risk and class groups of a set of ingredients (`data/drug_ingredients.csv`)."""
    return frozenset(g for n in names if n in _ingredients() for g in _ingredients()[n].groups)


def medication_concept(resource: Json, medications: dict[str, Json]) -> Json | None:
    if isinstance(resource.get("medicationCodeableConcept"), dict):
        return resource["medicationCodeableConcept"]
    link = resource.get("medicationReference")
    reference = link.get("reference") if isinstance(link, dict) else None
    if not isinstance(reference, str):
        return None
    if reference.startswith("#"):
        contained = {c.get("id"): c for c in resource.get("contained") or () if isinstance(c, dict)}
        medication = contained.get(reference[1:])
    else:
        medication = medications.get(reference) or medications.get(reference.rsplit("/", 1)[-1])
    return medication.get("code") if isinstance(medication, dict) else None


def read_medication_request(resource: Json, medications: dict[str, Json] | None = None) -> MedicationFact | None:
    """A MedicationRequest (or R3 MedicationOrder) as a fact; None when no known ingredient is in it."""
    concept = medication_concept(resource, medications or {})
    recognised = recognise(concept)
    if recognised is None:
        return None
    names, how = recognised
    groups = ingredient_groups(names)
    return MedicationFact(
        ingredients=names,
        groups=groups,
        recognised_by=how,
        text=concept_text(concept) or ", ".join(names),
        source=reference_of(resource),
        status=str(resource.get("status") or "unknown"),
        authored_on=parse_datetime(resource.get("authoredOn") or resource.get("dateWritten")),
        resource=resource,
    )


def medication_index(resources: list[Json]) -> dict[str, Json]:
    """Medication resources by 'Medication/id' and bare id, for medicationReference lookups."""
    index = {}
    for resource in resources:
        if resource.get("resourceType") == "Medication" and resource.get("id"):
            index[f"Medication/{resource['id']}"] = resource
            index[resource["id"]] = resource
    return index
