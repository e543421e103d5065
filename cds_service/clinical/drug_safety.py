"""A drug the patient is taking whose label or guideline says stop at the current count.

Chart-opening counterpart of the order check: clozapine in an interrupt band of its label's ANC table
(`clozapine_anc.csv`, the BEN table when Duffy-null is documented), a BCR-ABL TKI below the ELN 2016
stop thresholds (`tki_cytopenia.csv`). Pure functions over the record; each hold names the row it
was judged by, so the card prints only numbers that come from that row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.clinical.cytopenia import as_of_view
from cds_service.clinical.knowledge import threshold
from cds_service.clinical.order_knowledge import clozapine_bands, tki_thresholds
from cds_service.clinical.series import Point, direct_series, neutrophil_series
from fhir_mappings import Analyte, ClinicalRecord
from fhir_mappings.medications import MedicationFact


@dataclass(frozen=True, slots=True)
class CountLimit:
    """A count the hold was judged by, and the limit it fell below."""

    analyte: Analyte
    point: Point
    below: float


@dataclass(frozen=True, slots=True)
class DrugHold:
    rule: str
    drug: str
    medication: MedicationFact
    indicator: str
    band: str
    action: str
    monitoring: str | None
    low: tuple[CountLimit, ...]
    consult: bool
    stale: bool
    source: str


def _latest(points: tuple[Point, ...], as_of: datetime) -> Point | None:
    """The latest count within the look-back: an older one is history and decides nothing."""
    if not points:
        return None
    latest = points[-1]
    return latest if (as_of - latest.time).days <= threshold("history_lookback_days").value else None


def _stale(point: Point, as_of: datetime) -> bool:
    return (as_of - point.time).total_seconds() / 86400 > threshold("stale_result_days").value


def _clozapine(
    medication: MedicationFact, record: ClinicalRecord, anc: Point | None, as_of: datetime
) -> DrugHold | None:
    if anc is None:
        return None
    population = "duffy_null" if record.has_condition("duffy_null") else "general"
    band = next(b for b in reversed(clozapine_bands()[population]) if anc.value >= b.anc_at_least)
    if not band.interrupt:
        return None
    return DrugHold(
        "clozapine",
        "clozapine",
        medication,
        band.indicator or "warning",
        band.label,
        band.action_text,
        band.monitoring,
        (CountLimit(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, anc, band.anc_below or band.anc_at_least),),
        band.haematology_consult,
        _stale(anc, as_of),
        band.source,
    )


def _tki(medication: MedicationFact, anc: Point | None, platelets: Point | None, as_of: datetime) -> DrugHold | None:
    rows = [tki_thresholds()[i] for i in medication.ingredients if i in tki_thresholds()]
    if not rows:
        return None
    row = rows[0]
    low = []
    if anc is not None and anc.value < row.stop_anc_below:
        low.append(CountLimit(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, anc, row.stop_anc_below))
    if platelets is not None and platelets.value < row.stop_platelets_below:
        low.append(CountLimit(Analyte.PLATELETS, platelets, row.stop_platelets_below))
    if not low:
        return None
    return DrugHold(
        "bcr_abl_tki",
        row.ingredient,
        medication,
        "warning",
        f"{row.cited_as} stop threshold ({row.setting})",
        row.resume_text,
        None,
        tuple(low),
        False,
        any(_stale(limit.point, as_of) for limit in low),
        row.source,
    )


def drug_holds(record: ClinicalRecord, as_of: datetime) -> tuple[DrugHold, ...]:
    """One hold per drug the patient is taking whose count is in a stop band. Without an active
    medication there is no hold, and the counts are not read."""
    if not any(medication.active for medication in record.medications):
        return ()
    record = as_of_view(record, as_of)
    anc = _latest(neutrophil_series(record), as_of)
    platelets = _latest(direct_series(record, Analyte.PLATELETS), as_of)
    holds: dict[str, DrugHold] = {}
    for medication in record.medications:
        if not medication.active:
            continue
        hold = None
        if medication.in_group("clozapine"):
            hold = _clozapine(medication, record, anc, as_of)
        elif medication.in_group("bcr_abl_tki"):
            hold = _tki(medication, anc, platelets, as_of)
        if hold is not None:
            holds.setdefault(hold.drug, hold)
    return tuple(holds.values())
