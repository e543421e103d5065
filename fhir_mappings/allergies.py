"""AllergyIntolerance -> AllergyFact: which drugs or classes, and whether the reaction was immediate-type.

Substances are recognised like medications (`medications.recognise`: RxNorm ingredient, product, then
ingredient name), plus class words recorded as text (`data/allergy_classes.csv`). A reaction is
immediate-type when a manifestation reads as hives, bronchospasm or anaphylaxis
(`data/immediate_reactions.csv`, IDSA 2010 via clinical-knowledge §4.4); when no reaction is
recorded the type is unknown, never assumed harmless.
"""

from __future__ import annotations

import re
from typing import Any

from cds_service.knowledge_tables import knowledge_loader, read_table
from cds_service.request import Json, reference_of
from fhir_mappings.facts import AllergyFact
from fhir_mappings.medications import ingredient_groups, recognise
from fhir_mappings.resources import codings, concept_text

EXCLUDED_VERIFICATION = frozenset({"entered-in-error", "refuted"})
INACTIVE_CLINICAL = frozenset({"inactive", "resolved"})


@knowledge_loader
def _classes() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    return tuple(
        (re.compile(row["pattern"], re.IGNORECASE), frozenset(row["groups"].split(";")))
        for row in read_table("fhir_mappings", "allergy_classes.csv")
    )


@knowledge_loader
def _immediate() -> tuple[re.Pattern[str], ...]:
    return tuple(
        re.compile(row["pattern"], re.IGNORECASE) for row in read_table("fhir_mappings", "immediate_reactions.csv")
    )


def _code(concept: Any) -> str | None:
    return next((c.get("code") for c in codings(concept) if c.get("code")), None)


def _reactions(resource: Json) -> tuple[str, ...]:
    found = []
    for reaction in resource.get("reaction") or ():
        if not isinstance(reaction, dict):
            continue
        for manifestation in reaction.get("manifestation") or ():
            if text := concept_text(manifestation):
                found.append(text)
        if isinstance(reaction.get("description"), str) and reaction["description"].strip():
            found.append(reaction["description"].strip())
    return tuple(dict.fromkeys(found))


def read_allergy(resource: Json) -> AllergyFact | None:
    """A current drug allergy we can place in a group; None for food, refuted or unrecognised ones."""
    if _code(resource.get("verificationStatus")) in EXCLUDED_VERIFICATION:
        return None
    if _code(resource.get("clinicalStatus")) in INACTIVE_CLINICAL:
        return None
    concept = resource.get("code")
    text = concept_text(concept) or ""
    groups: set[str] = set()
    recognised = recognise(concept)
    if recognised:
        groups.update(ingredient_groups(recognised[0]))
    groups.update(g for pattern, found in _classes() if pattern.search(text) for g in found)
    if not groups:
        return None
    reactions = _reactions(resource)
    if reactions:
        immediate: bool | None = any(p.search(r) for r in reactions for p in _immediate())
    else:
        immediate = None
    return AllergyFact(
        substance=text or ", ".join(recognised[0] if recognised else ()),
        groups=frozenset(groups),
        immediate=immediate,
        reactions=reactions,
        criticality=resource.get("criticality") if isinstance(resource.get("criticality"), str) else None,
        source=reference_of(resource),
    )
