"""One index of the codes that make the service read an Observation, DiagnosticReport or ServiceRequest:
(system, code) -> what the code means, built from the knowledge tables at start-up.

A chart sends hundreds of Observations, most of them codes the service does not read. Each resource's
codings are walked once (`meaning_of`) and each coding costs one dictionary lookup, instead of every
reader (blood counts, pregnancy status, blood cultures) walking every resource's codings again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds_service.knowledge_tables import knowledge_loader, read_table
from fhir_mappings.knowledge import LabCode, lab_codes

LOINC = "http://loinc.org"


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    """What a code, or a CodeableConcept's codings together, tell the readers."""

    lab: LabCode | None = None
    """A result of `lab_codes.csv` (LOINC): a blood count, a temperature, a weight or a blood pressure."""
    pregnancy_status: bool = False
    """The question of a pregnancy-status Observation (`pregnancy_status.csv`, role `question`)."""
    blood_culture: bool = False
    """A blood culture, ordered or taken (`culture_codes.csv`)."""


NOT_READ = CodeMeaning()


@knowledge_loader
def code_index() -> dict[tuple[str, str], CodeMeaning]:
    labs = {(LOINC, code): lab for code, lab in lab_codes().items()}
    pregnancy = {
        (r["system"], r["code"]) for r in read_table("fhir_mappings", "pregnancy_status.csv") if r["role"] == "question"
    }
    cultures = {(r["system"], r["code"]) for r in read_table("fhir_mappings", "culture_codes.csv")}
    return {
        key: CodeMeaning(labs.get(key), key in pregnancy, key in cultures) for key in labs.keys() | pregnancy | cultures
    }


def meaning_of(concept: Any) -> CodeMeaning:
    """The meaning of a CodeableConcept: its first coding that is a lab code (in the order sent), and
    whether any coding is a pregnancy-status question or a blood culture.

    Only string systems and codes are in the tables, so any other system or code sent finds nothing
    (an unhashable one, a list or an object, cannot even be looked up and is skipped). Called once per
    Observation, DiagnosticReport and ServiceRequest, and for most of them nothing is found: that path
    is a loop over the codings with one dictionary lookup each.
    """
    if not isinstance(concept, dict):
        return NOT_READ
    index = code_index()
    found = []
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict):
            key: Any = (coding.get("system"), coding.get("code"))  # whatever was sent: only str pairs are found
            try:
                meaning = index.get(key)
            except TypeError:
                continue
            if meaning is not None:
                found.append(meaning)
    if len(found) <= 1:
        return found[0] if found else NOT_READ
    return CodeMeaning(
        next((m.lab for m in found if m.lab is not None), None),
        any(m.pregnancy_status for m in found),
        any(m.blood_culture for m in found),
    )
