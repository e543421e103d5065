"""Draft MedicationRequests with structured dosage, from `data/medication_orders.csv`.

Each template is validated once with fhir.resources' R4B MedicationRequest model when the catalogue
loads. Codes are RxNorm SCD (or SCDG where no SCD is verified) from the reference pack; a drug
without a verified code is sent as text, and a dose the pack does not verify is not sent at all.
"""

from __future__ import annotations

import copy
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from cards.orders import address
from cds_service.knowledge_tables import knowledge_loader, read_table, required

UCUM = "http://unitsofmeasure.org"


def _quantity(value: str, unit: str) -> dict[str, Any]:
    return {"value": float(value), "unit": unit, "system": UCUM, "code": unit}


def _dosage(row: dict[str, str]) -> dict[str, Any]:
    dosage: dict[str, Any] = {"text": row["dosage_text"]}
    if row["route"]:
        dosage["route"] = {"text": row["route"]}
    if row["period"]:
        repeat: dict[str, Any] = {
            "frequency": int(row["frequency"]),
            "period": float(row["period"]),
            "periodUnit": row["period_unit"],
        }
        if row["period_max"]:
            repeat["periodMax"] = float(row["period_max"])
        dosage["timing"] = {"repeat": repeat}
    if row["dose_value"]:
        dosage["doseAndRate"] = [{"doseQuantity": _quantity(row["dose_value"], row["dose_unit"])}]
    elif row["dose_low"]:
        dosage["doseAndRate"] = [
            {
                "doseRange": {
                    "low": _quantity(row["dose_low"], row["dose_unit"]),
                    "high": _quantity(row["dose_high"], row["dose_unit"]),
                }
            }
        ]
    return dosage


@knowledge_loader
def medication_catalogue() -> dict[str, dict[str, Any]]:
    templates = {}
    for row in read_table("cards", "medication_orders.csv"):
        medication: dict[str, Any] = {"text": row["text"]}
        if row["code"]:
            medication["coding"] = [{"system": row["system"], "code": row["code"], "display": row["display"]}]
        template = {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": medication,
            "subject": {"reference": "Patient/example"},
            "dosageInstruction": [_dosage(row)],
        }
        MedicationRequest.model_validate(template)
        templates[row["order"]] = template
    return templates


def medication_label(order: str) -> str:
    return medication_catalogue()[order]["medicationCodeableConcept"]["text"]


# The orders a card names with their citation ("an aminoglycoside (IDSA 2010: ...)").
CITED_ORDERS = frozenset({"aminoglycoside_unspecified"})


@knowledge_loader
def _citations() -> dict[str, str]:
    """Order -> the short citation a card prints for it; one of `CITED_ORDERS` without it stops the start."""
    return {
        row["order"]: required(row, "cited_as") if row["order"] in CITED_ORDERS else row["cited_as"]
        for row in read_table("cards", "medication_orders.csv")
    }


def medication_citation(order: str) -> str:
    return _citations()[order]


def draft_medication(
    order: str,
    patient_id: str,
    encounter_id: str | None = None,
    reason: str | None = None,
    *,
    dose_ug: float | None = None,
    dose_text: str | None = None,
) -> dict[str, Any]:
    """A copy of the template for this patient; a weight-based dose is filled in when computed."""
    resource = address(copy.deepcopy(medication_catalogue()[order]), patient_id, encounter_id, reason)
    dosage = resource["dosageInstruction"][0]
    if dose_ug is not None:
        dosage["doseAndRate"] = [{"doseQuantity": _quantity(f"{dose_ug:.0f}", "ug")}]
    if dose_text:
        dosage["text"] = f"{dose_text} {dosage['text']}"
    return resource
