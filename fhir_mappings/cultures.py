"""Blood cultures: ordered (ServiceRequest) or taken (Observation, DiagnosticReport), by code only.

The codes are in `data/culture_codes.csv`, recognised by `codes.meaning_of` with every other code the
service reads; a culture named only in free text is not recognised.
"""

from __future__ import annotations

from cds_service.request import Json, reference_of
from fhir_mappings.facts import CultureFact
from fhir_mappings.observations import effective_time
from fhir_mappings.times import parse_datetime

IGNORED_STATUSES = frozenset({"entered-in-error", "revoked", "cancelled", "draft"})


def read_blood_culture(resource: Json) -> CultureFact | None:
    """A resource whose code is a blood culture (`meaning_of(code).blood_culture`), unless it was withdrawn."""
    status = str(resource.get("status") or "unknown")
    if status in IGNORED_STATUSES:
        return None
    if resource.get("resourceType") == "ServiceRequest":
        occurrence: Json = resource["occurrencePeriod"] if isinstance(resource.get("occurrencePeriod"), dict) else {}
        time = (
            parse_datetime(resource.get("occurrenceDateTime"))
            or parse_datetime(occurrence.get("start"))
            or parse_datetime(resource.get("authoredOn"))
        )
        return CultureFact("ordered", time, status, reference_of(resource))
    return CultureFact("taken", effective_time(resource), status, reference_of(resource))
