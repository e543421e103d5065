"""Patient -> Demographics, validated with fhir.resources' R4B model."""

from __future__ import annotations

import re
from datetime import date

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from fhir_mappings.facts import DataIssue, Demographics
from fhir_mappings.resources import Json
from fhir_mappings.times import parse_date

# The elements the service reads. Validating only these with the R4B model keeps their type checks
# (a real date, a code from administrative-gender) at a fraction of the cost: a full Synthea Patient,
# with its extensions, identifiers and addresses, takes about 10 ms to validate.
READ_ELEMENTS = ("resourceType", "id", "gender", "birthDate")
# Values every R4B validation accepts and reads as themselves (an id of R4's characters and length, a gender
# of administrative-gender, a full calendar date): a Patient whose read elements are all such is read
# without the model, which costs about 0.1 ms a call. Anything else, however slightly different, is left
# to the model, so what it accepts, rejects and reports stays its own.
PLAIN_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
PLAIN_GENDERS = frozenset({"male", "female", "other", "unknown"})
PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _plainly_valid(elements: Json) -> tuple[date | None, str | None] | None:
    """(birth date, gender) when the read elements are plainly valid R4, else None (the model decides)."""
    if elements.get("resourceType") != "Patient":
        return None
    patient_id, gender, birth = elements.get("id"), elements.get("gender"), elements.get("birthDate")
    if "id" in elements and not (isinstance(patient_id, str) and PLAIN_ID.fullmatch(patient_id)):
        return None
    if "gender" in elements and not (isinstance(gender, str) and gender in PLAIN_GENDERS):
        return None
    if "birthDate" not in elements:
        return None, gender
    if not (isinstance(birth, str) and PLAIN_DATE.fullmatch(birth)):
        return None
    try:
        return date.fromisoformat(birth), gender
    except ValueError:
        return None


def read_patient(resource: Json | None, patient_id: str | None) -> tuple[Demographics, list[DataIssue]]:
    """Demographics from the Patient, its read elements validated with R4B."""
    if resource is None:
        return Demographics(patient_id=patient_id), [
            DataIssue("Patient", "no Patient resource: age and sex unknown, adult cut-offs cannot be chosen")
        ]
    issues = []
    elements = {k: resource[k] for k in READ_ELEMENTS if k in resource}
    try:
        if (plain := _plainly_valid(elements)) is not None:
            birth_date, sex = plain
        else:
            patient = Patient.model_validate(elements)
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
