"""Patient -> Demographics, validated with fhir.resources' R4B model."""
from __future__ import annotations

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from fhir_mappings.facts import DataIssue, Demographics
from fhir_mappings.resources import Json
from fhir_mappings.times import parse_date


def read_patient(resource: Json | None, patient_id: str | None) -> tuple[Demographics, list[DataIssue]]:
    """One Patient per call: cheap enough to validate in full, unlike hundreds of Observations."""
    if resource is None:
        return Demographics(patient_id=patient_id), [
            DataIssue("Patient", "no Patient resource: age and sex unknown, adult cut-offs cannot be chosen")
        ]
    issues = []
    try:
        patient = Patient.model_validate(resource)
        birth_date, sex = patient.birthDate, patient.gender
    except ValidationError as error:
        issues.append(DataIssue(f"Patient/{resource.get('id', '?')}", f"is not valid FHIR R4 ({error.error_count()} errors); birth date and sex read as sent"))
        birth_date, sex = parse_date(resource.get("birthDate")), resource.get("gender")
    if sex not in ("male", "female"):
        sex = None
    return Demographics(patient_id=resource.get("id") or patient_id, birth_date=birth_date, sex=sex), issues
