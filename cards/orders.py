"""Draft FHIR orders for suggestions, from the coded catalogue in `data/orders.csv`.

Each template is validated once with fhir.resources' R4B models when the catalogue loads; a
suggestion only adds the patient (and encounter) to a copy, so what we send is valid R4.
"""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.knowledge_tables import knowledge_loader, read_table

_MODELS = {"ServiceRequest": ServiceRequest}


@knowledge_loader
def catalogue() -> dict[str, dict[str, Any]]:
    templates = {}
    for row in read_table("cards", "orders.csv"):
        code: dict[str, Any] = {"text": row["text"]}
        if row["code"]:
            code["coding"] = [{"system": row["system"], "code": row["code"], "display": row["display"]}]
        template = {
            "resourceType": row["resource_type"],
            "status": "draft",
            "intent": "order",
            "code": code,
            "subject": {"reference": "Patient/example"},
        }
        _MODELS[row["resource_type"]].model_validate(template)
        templates[row["order"]] = template
    return templates


def address(resource: dict[str, Any], patient_id: str, encounter_id: str | None, reason: str | None) -> dict[str, Any]:
    """Point a draft order at its patient (and encounter) and say why it is suggested."""
    resource["subject"] = {"reference": f"Patient/{patient_id}"}
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if reason:
        resource["reasonCode"] = [{"text": reason}]
    return resource


def draft_order(
    order: str, patient_id: str, encounter_id: str | None = None, reason: str | None = None, note: str | None = None
) -> dict[str, Any]:
    resource = address(orjson.loads(orjson.dumps(catalogue()[order])), patient_id, encounter_id, reason)
    if note:
        resource["note"] = [{"text": note}]
    return resource


def order_label(order: str) -> str:
    return catalogue()[order]["code"]["text"]
