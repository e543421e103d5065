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

from cards.markdown import clip, escape, listed
from cards.model import Action, Suggestion
from cds_service.clinical.context import Contributor, Documented, FindingContext, ProblemListEntry, code_rules
from cds_service.clinical.knowledge import threshold
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
    since = f" since {d.since:%Y-%m-%d}" if d.since else ""
    where = "; ".join(filter(None, (_code_text(d.code), d.source)))
    return f"{escape(clip(d.display, 80))}{since} ({escape(where)})"


def _contributor_text(c: Contributor, heading: bool = True) -> str:
    text = f"**{escape(clip(c.what, 70))}**"
    if heading:
        text = f"{CAUSE_HEADINGS.get(c.cause, c.cause)}: {text}"
    if c.cause == "medication" and c.why != c.what:  # why this drug: its known effect on the counts
        text += f", {escape(clip(c.why, 60))}"
    dated = (
        f"last ordered {c.last_ordered:%Y-%m-%d}" if c.last_ordered else f"since {c.since:%Y-%m-%d}" if c.since else ""
    )
    return text + f" ({', '.join(filter(None, (dated, escape(c.sources[0]) if c.sources else '')))})"


def context_blocks(context: FindingContext | None) -> list[str]:
    """Short lines, most useful first: what was not read, documented, possible causes, next steps, the
    problem-list entry."""
    if context is None:
        return []
    days = threshold("persistent_cytopenia_days").value
    blocks = []
    if context.known_and_stable:
        blocks.append(
            f"Documented for over {days:g} days and no worse than before: shown as information; the work-up "
            "(smear, haematology referral) is not suggested again."
        )
    if context.not_checked:
        blocks.append("**Not checked:** " + listed([escape(clip(n, 90)) for n in context.not_checked], 2) + ".")
    if (band := context.clozapine) and not band.interrupt:  # a hold band has its own drug-safety card
        blocks.append(
            f"**On clozapine: {escape(band.label)}.** {escape(band.action_text)} Monitoring: {escape(band.monitoring)}"
        )
    if context.documented:
        blocks.append("**Documented:** " + listed([_documented_text(d) for d in context.documented], 2) + ".")
    if context.contributors:
        blocks.append(
            "**Possible causes on the chart:** " + listed([_contributor_text(c) for c in context.contributors], 3) + "."
        )
    elif context.unexplained:
        blocks.append("**Nothing on the chart explains this** (problem list and active medications read).")
    if context.next_steps:
        blocks.append(
            f"**Persisting over {days:g} days and unexplained.** To consider: "
            + "; ".join(escape(s.short) for s in context.next_steps)
            + "."
        )
    if context.problem_list:
        entry = context.problem_list
        blocks.append(f"**Not on the problem list:** suggested entry {escape(_code_label(entry))}.")
    elif context.problem_list_note:
        blocks.append(escape(context.problem_list_note))
    if context.previously_documented:
        blocks.append(
            "Previously documented, now resolved: "
            + listed([_documented_text(d) for d in context.previously_documented], 2)
            + "."
        )
    if context.treatments:
        blocks.append(
            "Treatment on the chart: "
            + listed([_contributor_text(c, heading=False) for c in context.treatments], 3)
            + "."
        )
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
