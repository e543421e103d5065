"""Small FHIR R4 JSON builders so a test reads like the lab result it describes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from fhir_mappings import read_record

PATIENT_ID = "p1"
DAY0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
_ids = count(1)

WBC, ANC, NEUT_PCT, SEGS_PCT, BANDS_PCT, SEGS, BANDS = (
    "6690-2",
    "751-8",
    "770-8",
    "26505-8",
    "764-1",
    "30451-9",
    "26507-4",
)
LYMPH, HB, HB_MOLAR, PLT, TEMP = "731-0", "718-7", "59260-0", "777-3", "8310-5"
UNITS = {
    WBC: "10*3/uL",
    ANC: "10*3/uL",
    SEGS: "10*3/uL",
    BANDS: "10*3/uL",
    LYMPH: "10*3/uL",
    PLT: "10*3/uL",
    NEUT_PCT: "%",
    SEGS_PCT: "%",
    BANDS_PCT: "%",
    HB: "g/dL",
    HB_MOLAR: "mmol/L",
    TEMP: "Cel",
}


def day(n: float) -> datetime:
    return DAY0 + timedelta(days=n)


def observation(
    code: str,
    value,
    unit: str | None = None,
    *,
    on: float = 0,
    status: str = "final",
    low: float | None = None,
    subject: str | None = f"Patient/{PATIENT_ID}",
    id: str | None = None,
    specimen: str | None = None,
) -> dict:
    """One LOINC-coded Observation; `on` is days after DAY0; `unit` defaults to the usual UCUM unit."""
    unit = UNITS[code] if unit is None else unit
    resource = {
        "resourceType": "Observation",
        "id": id or f"obs-{next(_ids)}",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "x\u200b"}]},
        "effectiveDateTime": day(on).isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }
    if subject:
        resource["subject"] = {"reference": subject}
    if low is not None:
        resource["referenceRange"] = [{"low": {"value": low, "unit": unit, "code": unit}}]
    if specimen:
        resource["specimen"] = {"reference": specimen}
    return resource


def patient(gender: str = "female", birth_date: str = "1970-01-01") -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": gender, "birthDate": birth_date}


def condition(text: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"cond-{next(_ids)}",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"text": text},
    }


def draw(*results: tuple, on: float = 0, name: str | None = None) -> list[dict]:
    """The Observations of one blood draw grouped by a DiagnosticReport: results are (code, value[, unit])."""
    observations = [observation(*r, on=on) for r in results]
    report = {
        "resourceType": "DiagnosticReport",
        "id": name or f"dr-{next(_ids)}",
        "status": "final",
        "effectiveDateTime": day(on).isoformat(),
        "result": [{"reference": f"Observation/{o['id']}"} for o in observations],
    }
    return [*observations, report]


def record_of(*resources: dict, patient_resource: dict | None = None):
    return read_record(patient_resource or patient(), resources, PATIENT_ID)
