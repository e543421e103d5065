"""Draft orders of order-select / order-sign (`context.draftOrders`) -> DraftOrder facts.

Accepts what real clients send: a Bundle without `type`, `MedicationRequest.category` as a single
object (the CDS Hooks Sandbox), `medicationReference` to a contained Medication or to a Medication
elsewhere in the Bundle, ServiceRequests among the drafts, and an empty Bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cds_service.request import Json, resources_in
from fhir_mappings.conditions import categories_of
from fhir_mappings.knowledge import unit_key, unit_rules
from fhir_mappings.medications import MedicationFact, medication_index, read_medication_request
from fhir_mappings.times import parse_datetime

ORDER_TYPES = frozenset(
    {
        "MedicationRequest",
        "ServiceRequest",
        "NutritionOrder",
        "DeviceRequest",
        "VisionPrescription",
        "SupplyRequest",
        "CommunicationRequest",
        "ImmunizationRecommendation",
    }
)
PERIOD_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7}


class UnknownSelection(ValueError):
    """order-select named a selection that is not among the draft orders."""


@dataclass(frozen=True, slots=True)
class Dose:
    """One administration in micrograms and how many a day (None when the order does not say)."""

    micrograms: float
    per_day: float | None
    reported: str


@dataclass(frozen=True, slots=True)
class DraftOrder:
    reference: str
    resource_type: str
    has_id: bool
    medication: MedicationFact | None
    reason_categories: frozenset[str]
    planned_start: datetime | None
    dose: Dose | None


def planned_start(resource: Json) -> datetime | None:
    """When the order is meant to start: timing event, bounds start, validity start, then authoredOn."""
    for dosage in _list(resource.get("dosageInstruction")):
        timing = _dict(dosage.get("timing"))
        events = timing.get("event")
        starts = sorted(filter(None, (parse_datetime(e) for e in events))) if isinstance(events, list) else []
        if starts:
            return starts[0]
        if start := parse_datetime(_dict(_dict(timing.get("repeat")).get("boundsPeriod")).get("start")):
            return start
    validity = _dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))
    return parse_datetime(validity.get("start")) or parse_datetime(resource.get("authoredOn"))


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Json]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value or () if isinstance(v, dict)] if isinstance(value, list) else []


def read_dose(resource: Json) -> Dose | None:
    """The first dosage's dose as micrograms, with its frequency per day when stated."""
    for dosage in _list(resource.get("dosageInstruction")):
        for dose_and_rate in _list(dosage.get("doseAndRate")):
            quantity = _dict(dose_and_rate.get("doseQuantity"))
            value, unit = _number(quantity.get("value")), quantity.get("code") or quantity.get("unit")
            rule = unit_rules().get(("drug_mass", unit_key(unit))) if isinstance(unit, str) else None
            if value is None or value <= 0 or rule is None:
                continue
            repeat = _dict(_dict(dosage.get("timing")).get("repeat"))
            per_day = None
            frequency, period = _number(repeat.get("frequency", 1)), _number(repeat.get("period"))
            if frequency and period and period > 0 and repeat.get("periodUnit") in PERIOD_PER_DAY:
                per_day = frequency * PERIOD_PER_DAY[repeat["periodUnit"]] / period
            return Dose(value * rule.factor, per_day, f"{value:g} {unit}")
    return None


def _reason_categories(resource: Json) -> frozenset[str]:
    concepts = _list(resource.get("reasonCode"))
    return frozenset(category for concept in concepts for category, _ in categories_of(concept))


def _draft(resource: Json, medications: dict[str, Json]) -> DraftOrder:
    kind = str(resource.get("resourceType"))
    medication = read_medication_request(resource, medications) if kind == "MedicationRequest" else None
    return DraftOrder(
        reference=f"{kind}/{resource.get('id', '?')}",
        resource_type=kind,
        has_id=isinstance(resource.get("id"), str) and bool(resource["id"]),
        medication=medication,
        reason_categories=_reason_categories(resource),
        planned_start=planned_start(resource) if medication else None,
        dose=read_dose(resource) if medication else None,
    )


def read_draft_orders(bundle: Any) -> tuple[DraftOrder, ...]:
    """Every order in the draftOrders Bundle once (a resource listed twice is one order)."""
    resources = list(resources_in(bundle))
    medications = medication_index(resources)
    drafts: dict[str, DraftOrder] = {}
    for resource in resources:
        if resource.get("resourceType") in ORDER_TYPES:
            draft = _draft(resource, medications)
            drafts.setdefault(draft.reference if draft.has_id else f"#{len(drafts)}", draft)
    return tuple(drafts.values())


def selected(drafts: tuple[DraftOrder, ...], selections: list[str]) -> tuple[DraftOrder, ...]:
    """The drafts order-select names; a selection that is not a draft is the client's error."""
    by_reference = {d.reference: d for d in drafts if d.has_id}
    missing = [s for s in selections if s not in by_reference]
    if missing:
        raise UnknownSelection(f"selections not found in draftOrders: {', '.join(missing[:5])}")
    return tuple(by_reference[s] for s in dict.fromkeys(selections))
