"""The chart around a cytopenia, as card text, and the problem-list entry as a draft FHIR Condition.

Every Condition the code table can produce is validated with fhir.resources' R4B model when the tables
load (`problem_list_conditions`), so what the EHR receives is valid R4: category problem-list-item,
verificationStatus provisional, the verified ICD-10-CM code chosen by `clinical/data/problem_list_codes.csv`,
and the results it rests on. A call only fills in references and a date, so it validates nothing again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.condition import Condition

from cards.markdown import bullets, escape
from cards.model import Action, Suggestion
from cds_service.clinical.context import Contributor, Documented, FindingContext, ProblemListEntry, code_rules
from cds_service.knowledge_tables import knowledge_loader

CAUSE_HEADINGS = {
    "chemotherapy_radiation": "Chemotherapy or radiation",
    "medication": "Medication",
    "malignancy": "Cancer",
    "marrow_disorder": "Marrow disorder",
    "nutritional_deficiency": "Nutritional deficiency",
    "kidney_disease": "Kidney disease",
    "infection": "Infection",
    "autoimmune": "Autoimmune",
    "transplant": "Transplant",
    "spleen": "Spleen",
    "genetic": "Genetic or constitutional",
    "treatment": "Treatment",
}
SYSTEM_NAMES = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://snomed.info/sct": "SNOMED CT",
}
_REFERENCE = re.compile(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _code_text(code: str | None) -> str:
    if not code or "|" not in code:
        return ""
    system, value = code.split("|", 1)
    return f"{SYSTEM_NAMES.get(system, system)} {value}"


def _documented_text(d: Documented) -> str:
    since = f"since {d.since:%Y-%m-%d}" if d.since else "date not recorded"
    code = _code_text(d.code)
    return f"{escape(d.display)} {since}" + (
        f" ({escape(code)}; {escape(d.source)})" if code else f" ({escape(d.source)})"
    )


def _contributor_text(c: Contributor) -> str:
    parts = [f"{CAUSE_HEADINGS.get(c.cause, c.cause)}: **{escape(c.what)}**"]
    if c.what != c.why:
        parts.append(f" ({escape(c.why)})")
    if c.last_ordered:
        parts.append(f", last ordered {c.last_ordered:%Y-%m-%d}")
    if c.since:
        parts.append(f", since {c.since:%Y-%m-%d}")
    if code := _code_text(c.code):
        parts.append(f", {escape(code)}")
    return "".join(parts) + f"; source: {escape(', '.join(c.sources))}"


def context_blocks(context: FindingContext | None) -> list[str]:
    """Markdown blocks: documented, contributors, what was not checked, unexplained next steps, problem list."""
    if context is None:
        return []
    blocks = []
    if band := context.clozapine:
        blocks.append(
            f"**On clozapine: {escape(band.label)}.** {escape(band.action_text)} Monitoring: {escape(band.monitoring)}"
        )
    if context.documented:
        blocks.append("**Documented:** " + "; ".join(_documented_text(d) for d in context.documented) + ".")
    if context.known_and_stable:
        blocks.append(
            "Documented for over 4 weeks and no worse than before: shown as information; the work-up (smear, "
            "haematology referral) is not suggested again."
        )
    if context.previously_documented:
        blocks.append(
            "Previously documented, now resolved: "
            + "; ".join(_documented_text(d) for d in context.previously_documented)
            + "."
        )
    if context.contributors:
        blocks.append(
            "**Possible contributors on the chart:**\n" + bullets([_contributor_text(c) for c in context.contributors])
        )
    elif context.unexplained:
        blocks.append(
            "**Nothing on the chart explains this:** no cause found on the problem list or in the active "
            "medication orders."
        )
    if context.treatments:
        blocks.append("Also on the chart:\n" + bullets([_contributor_text(c) for c in context.treatments]))
    if context.not_checked:
        blocks.append("**Not checked:** " + "; ".join(context.not_checked) + ".")
    if context.next_steps:
        blocks.append(
            "**Persisting over 4 weeks and unexplained.** To consider:\n"
            + bullets([escape(s.text) for s in context.next_steps])
            + "\n\nSources: "
            + escape(" | ".join(dict.fromkeys(s.source for s in context.next_steps)))
        )
    if context.problem_list:
        entry = context.problem_list
        blocks.append(
            f"**Not on the problem list.** Suggested entry: {escape(_code_label(entry))}, because "
            f"{escape(entry.reason)} "
            f"(code source: {escape(entry.source)})."
        )
    elif context.problem_list_note:
        blocks.append(escape(context.problem_list_note))
    return blocks


def _code_label(entry: ProblemListEntry) -> str:
    return f"{SYSTEM_NAMES.get(entry.system, entry.system)} {entry.code} {entry.display}"


def problem_list_condition(entry: ProblemListEntry, patient_id: str, encounter_id: str | None = None) -> dict[str, Any]:
    """A provisional problem-list Condition (its shape validated at start: `problem_list_conditions`)."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "verificationStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "provisional"}]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                        "display": "Problem List Item",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": entry.system, "code": entry.code, "display": entry.display}],
            "text": entry.display,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "note": [{"text": f"Suggested by cytopenia-cds: {entry.reason}."}],
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if entry.onset:
        resource["onsetDateTime"] = entry.onset.isoformat()
    evidence = [{"reference": source} for source in entry.evidence if _REFERENCE.match(source)]
    if evidence:
        resource["evidence"] = [{"detail": evidence}]
    return resource


@knowledge_loader
def problem_list_conditions() -> tuple[dict[str, Any], ...]:
    """Each code rule's Condition with every optional element filled, validated as R4 once, at start."""
    entries = (
        ProblemListEntry(
            rule.system,
            rule.code,
            rule.display,
            f"{rule.reason}: example support",
            rule.source,
            datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            ("Observation/example-1", "Condition/example-2"),
        )
        for rules in code_rules().values()
        for rule in rules
    )
    conditions = tuple(problem_list_condition(entry, "example-patient", "example-encounter") for entry in entries)
    for condition in conditions:
        Condition.model_validate(condition)
    return conditions


def problem_list_suggestions(
    context: FindingContext | None, patient_id: str, encounter_id: str | None
) -> tuple[Suggestion, ...]:
    if context is None or context.problem_list is None:
        return ()
    entry = context.problem_list
    return (
        Suggestion(
            label=f"Add to problem list (provisional): {entry.code} {entry.display}",
            actions=(
                Action(
                    "create",
                    f"Add {_code_label(entry)} to the problem list as provisional: {entry.reason}.",
                    problem_list_condition(entry, patient_id, encounter_id),
                ),
            ),
        ),
    )
