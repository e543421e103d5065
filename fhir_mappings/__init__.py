"""FHIR R4 resources in, typed clinical facts out.

Nothing here knows about HTTP or CDS Hooks: callers hand over parsed JSON and receive immutable
facts plus a list of what could not be used and why.
"""

from fhir_mappings.facts import (
    Analyte,
    ClinicalRecord,
    DataIssue,
    Demographics,
    Measurement,
)
from fhir_mappings.record import read_record

__all__ = ["Analyte", "ClinicalRecord", "DataIssue", "Demographics", "Measurement", "read_record"]
