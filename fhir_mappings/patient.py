"""Patient -> Demographics, validated with fhir.resources' R4B model."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from fhir_mappings.facts import DataIssue, Demographics
from fhir_mappings.resources import Json
from fhir_mappings.times import parse_date

# The elements the service reads. Validating only these with the R4B model keeps their type checks
# (a real date, a code from administrative-gender) at a fraction of the cost: a full Synthea Patient,
# with its extensions, identifiers and addresses, takes about 10 ms to validate.
READ_ELEMENTS = ("resourceType", "id", "gender", "birthDate")
PATIENTS_CACHED = 1024


def _validated(elements: tuple[tuple[str, Any], ...]) -> tuple[date | None, str | None] | int:
    """(birth date, gender) as the R4B model reads them, or the number of validation errors."""
    try:
        patient = Patient.model_validate(dict(elements))
    except ValidationError as error:
        return error.error_count()
    return patient.birthDate, patient.gender


# A chart is opened again and again by the same and by other clinicians: the validation of the same
# four values is remembered for the last PATIENTS_CACHED patients, not redone on every call.
_validated_recently = lru_cache(maxsize=PATIENTS_CACHED)(_validated)


def _validate(elements: tuple[tuple[str, Any], ...]) -> tuple[date | None, str | None] | int:
    """Each read element is a string in valid FHIR; anything else is invalid, rare, and not remembered."""
    if all(isinstance(value, str) for _, value in elements):
        return _validated_recently(elements)
    return _validated(elements)


def read_patient(resource: Json | None, patient_id: str | None) -> tuple[Demographics, list[DataIssue]]:
    """Demographics from the Patient, its read elements validated with R4B."""
    if resource is None:
        return Demographics(patient_id=patient_id), [
            DataIssue("Patient", "no Patient resource: age and sex unknown, adult cut-offs cannot be chosen")
        ]
    issues = []
    validated = _validate(tuple((k, resource[k]) for k in READ_ELEMENTS if k in resource))
    if isinstance(validated, int):
        issues.append(
            DataIssue(
                f"Patient/{resource.get('id', '?')}",
                f"is not valid FHIR R4 ({validated} errors); birth date and sex read as sent",
            )
        )
        birth_date, sex = parse_date(resource.get("birthDate")), resource.get("gender")
    else:
        birth_date, sex = validated
    if sex not in ("male", "female"):
        sex = None
    return Demographics(patient_id=resource.get("id") or patient_id, birth_date=birth_date, sex=sex), issues
