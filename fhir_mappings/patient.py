"""Patient -> Demographics, validated with fhir.resources' R4B model."""

from __future__ import annotations

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from fhir_mappings.facts import DataIssue, Demographics
from fhir_mappings.resources import Json
from fhir_mappings.times import parse_date

# The elements the service reads. Validating only these with the R4B model keeps their type checks
# (a real date, a code from administrative-gender) at a fraction of the cost: a full Synthea Patient,
# with its extensions, identifiers and addresses, takes about 10 ms to validate.
READ_ELEMENTS = ("resourceType", "id", "gender", "birthDate")


def read_patient(resource: Json | None, patient_id: str | None) -> tuple[Demographics, list[DataIssue]]:
    """Demographics from the Patient, its read elements validated with R4B."""
    if resource is None:
        return Demographics(patient_id=patient_id), [
            DataIssue("Patient", "no Patient resource: age and sex unknown, adult cut-offs cannot be chosen")
        ]
    issues = []
    try:
        patient = Patient.model_validate({k: resource[k] for k in READ_ELEMENTS if k in resource})
        birth_date, sex = patient.birthDate, patient.gender
    except ValidationError as error:
        issues.append(
            DataIssue(
                f"Patient/{resource.get('id', '?')}",
                f"is not valid FHIR R4 ({error.error_count()} errors); birth date and sex read as sent",
            )
        )
        birth_date, sex = parse_date(resource.get("birthDate")), resource.get("gender")
    if sex not in ("male", "female"):
        sex = None
    return Demographics(patient_id=resource.get("id") or patient_id, birth_date=birth_date, sex=sex), issues
