"""Encounter -> EncounterFact: where the patient was (outpatient or inpatient setting) and when.

Encounter.class is read against the v3 ActEncounterCode table in `data/encounter_classes.csv`; an
unknown class gives an unknown setting, never a guessed one.
"""

from __future__ import annotations

from cds_service.knowledge_tables import knowledge_loader, read_table
from cds_service.request import Json, reference_of
from fhir_mappings.facts import EncounterFact
from fhir_mappings.times import parse_datetime

IGNORED_STATUSES = frozenset({"cancelled", "entered-in-error", "planned"})


@knowledge_loader
def _classes() -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (r["system"], r["code"]): (r["setting"], r["display"])
        for r in read_table("fhir_mappings", "encounter_classes.csv")
    }


def read_encounter(resource: Json) -> EncounterFact | None:
    status = str(resource.get("status") or "unknown")
    if status in IGNORED_STATUSES:
        return None
    coding: Json = resource["class"] if isinstance(resource.get("class"), dict) else {}
    setting, display = _classes().get((str(coding.get("system")), str(coding.get("code"))), (None, ""))
    period: Json = resource["period"] if isinstance(resource.get("period"), dict) else {}
    return EncounterFact(
        setting=setting,
        class_display=display or str(coding.get("display") or coding.get("code") or "class not coded"),
        start=parse_datetime(period.get("start")),
        end=parse_datetime(period.get("end")),
        status=status,
        source=reference_of(resource),
    )
