"""Condition -> CodedFact, by the verified codes and phrases in `data/condition_*.csv`."""
from __future__ import annotations

import re
from functools import cache

from fhir_mappings.facts import CodedFact
from fhir_mappings.knowledge import read_table
from fhir_mappings.resources import Json, codings, concept_text, reference_of
from fhir_mappings.times import parse_date

EXCLUDED_VERIFICATION = frozenset({"entered-in-error", "refuted"})
ACTIVE_CLINICAL = frozenset({"active", "recurrence", "relapse"})


@cache
def _phrases() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple(
        (re.compile(row["pattern"], re.IGNORECASE), row["category"])
        for row in read_table("fhir_mappings", "condition_phrases.csv")
    )


def _status(concept) -> str | None:
    return next((c.get("code") for c in codings(concept) if c.get("code")), None)


def read_condition(resource: Json) -> list[CodedFact]:
    if _status(resource.get("verificationStatus")) in EXCLUDED_VERIFICATION:
        return []
    clinical = _status(resource.get("clinicalStatus"))
    status = "active" if clinical in ACTIVE_CLINICAL or clinical is None else "resolved"
    text = concept_text(resource.get("code")) or ""
    since = parse_date(resource.get("onsetDateTime")) or parse_date(resource.get("recordedDate"))
    code = next((f"{c.get('system')}|{c.get('code')}" for c in codings(resource.get("code"))), "")
    return [
        CodedFact(category, text, code, reference_of(resource), since, status)
        for pattern, category in _phrases()
        if pattern.search(text)
    ]
