"""What the app reads through the SMART client, and so the scopes it asks for: one list, used by the
launch page (scopes), the app page (queries) and the registration documentation."""

from __future__ import annotations

from functools import cache

from cds_service.knowledge_tables import read_table
from fhir_mappings.knowledge import lab_codes

PATIENT = "{patient}"  # the app puts the launched patient's id here


def _cultures() -> list[str]:
    return [f"{r['system']}|{r['code']}" for r in read_table("fhir_mappings", "culture_codes.csv")]


def _observation_codes() -> str:
    return ",".join(dict.fromkeys([*(f"http://loinc.org|{code}" for code in lab_codes()), *_cultures()]))


@cache
def app_reads() -> tuple[tuple[str, str], ...]:
    """(resource type, search) pairs; the Patient itself is read from the launch context."""
    return (
        ("Observation", f"Observation?patient={PATIENT}&code={_observation_codes()}&_sort=-date&_count=200"),
        ("Condition", f"Condition?patient={PATIENT}&_count=100"),
        ("Encounter", f"Encounter?patient={PATIENT}&_sort=-date&_count=20"),
        ("MedicationRequest", f"MedicationRequest?patient={PATIENT}&_count=100"),
        ("MedicationAdministration", f"MedicationAdministration?patient={PATIENT}&_count=100"),
        ("ServiceRequest", f"ServiceRequest?patient={PATIENT}&code={','.join(_cultures())}&_count=50"),
    )


def scopes() -> tuple[str, ...]:
    """SMART App Launch 2 scopes: the EHR launch context and read/search of exactly what is read."""
    kinds = ["Patient", *(kind for kind, _ in app_reads())]
    return ("launch", *(f"patient/{kind}.rs" for kind in kinds))
