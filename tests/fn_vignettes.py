"""Builders for febrile-neutropenia vignettes: a patient-view request from a few clinical facts."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

from tests.conftest import AS_OF

PID = "fn-patient"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_ids = count(1)


def at(minutes_before: float) -> str:
    return (AS_OF - timedelta(minutes=minutes_before)).isoformat().replace("+00:00", "Z")


def observation(code: str, value: float | None, unit: str, minutes_before: float, **extra) -> dict:
    resource = {
        "resourceType": "Observation",
        "id": f"obs-{next(_ids)}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": at(minutes_before),
        **extra,
    }
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    return resource


def temp(value: float, minutes_before: float, unit: str = "Cel", code: str = "8331-1") -> dict:
    return observation(code, value, unit, minutes_before)


def anc(value: float, hours_before: float) -> dict:
    return observation("751-8", value, "10*9/L", hours_before * 60)


def bp(systolic: float, minutes_before: float = 30) -> dict:
    resource = observation("85354-9", None, "", minutes_before)
    resource["component"] = [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {
                "value": systolic,
                "unit": "mm[Hg]",
                "system": "http://unitsofmeasure.org",
                "code": "mm[Hg]",
            },
        }
    ]
    return resource


def weight(kg: float, days_before: float = 2) -> dict:
    return observation("29463-7", kg, "kg", days_before * 1440)


def condition(system: str, code: str, text: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": f"cond-{next(_ids)}",
        "subject": {"reference": f"Patient/{PID}"},
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": system, "code": code}], "text": text},
    }


SOLID_TUMOUR = condition(ICD, "C50.911", "Breast cancer")
AML = condition(SNOMED, "91861009", "Acute myeloid leukemia")
LYMPHOMA = condition(SNOMED, "118600007", "Malignant lymphoma")
COPD = condition(SNOMED, "13645005", "COPD")
SEPTIC_SHOCK = condition(ICD, "R65.21", "Severe sepsis with septic shock")
PENICILLIN_ALLERGY_STATUS = condition(ICD, "Z88.0", "Allergy status to penicillin")


def allergy(text: str, reaction: str | None = None, rxnorm: str | None = None) -> dict:
    resource = {
        "resourceType": "AllergyIntolerance",
        "id": f"alg-{next(_ids)}",
        "patient": {"reference": f"Patient/{PID}"},
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
            ]
        },
        "code": {"text": text},
    }
    if rxnorm:
        resource["code"]["coding"] = [{"system": RXNORM, "code": rxnorm}]
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": reaction}]}]
    return resource


def medication(rxcui: str, text: str, status: str = "active") -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": f"med-{next(_ids)}",
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PID}"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxcui}], "text": text},
    }


def encounter(cls: str, start_minutes_before: float, status: str = "in-progress") -> dict:
    return {
        "resourceType": "Encounter",
        "id": f"enc-{next(_ids)}",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": f"Patient/{PID}"},
        "period": {"start": at(start_minutes_before)},
    }


def bundle(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def request(*resources: dict, birth_date: str = "1970-01-01", omit: tuple[str, ...] = ()) -> dict:
    by_key = {"vitals": [], "neutrophils": [], "conditions": [], "allergies": [], "medications": [], "encounters": []}
    kinds = {
        "Condition": "conditions",
        "AllergyIntolerance": "allergies",
        "MedicationRequest": "medications",
        "Encounter": "encounters",
    }
    for r in resources:
        if r["resourceType"] == "Observation":
            key = "neutrophils" if r["code"]["coding"][0]["code"] in ("751-8", "6690-2", "770-8", "742-7") else "vitals"
        else:
            key = kinds[r["resourceType"]]
        by_key[key].append(r)
    prefetch = {"patient": {"resourceType": "Patient", "id": PID, "birthDate": birth_date, "gender": "female"}}
    prefetch.update({k: bundle(v) for k, v in by_key.items() if k not in omit})
    return {
        "hook": "patient-view",
        "hookInstance": "6f1c2d1e-0000-4000-8000-000000000004",
        "context": {"userId": "Practitioner/example", "patientId": PID, "encounterId": "enc-now"},
        "prefetch": prefetch,
    }
