"""Immutable clinical facts: the only shapes the clinical logic sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from cds_service.request import DataIssue, Json


class Analyte(StrEnum):
    WHITE_BLOOD_CELLS = "white_blood_cells"
    ABSOLUTE_NEUTROPHIL_COUNT = "absolute_neutrophil_count"
    SEGMENTED_NEUTROPHILS = "segmented_neutrophils"
    BAND_NEUTROPHILS = "band_neutrophils"
    NEUTROPHILS_PERCENT = "neutrophils_percent"
    SEGMENTED_NEUTROPHILS_PERCENT = "segmented_neutrophils_percent"
    BAND_NEUTROPHILS_PERCENT = "band_neutrophils_percent"
    LYMPHOCYTES = "lymphocytes"
    LYMPHOCYTES_PERCENT = "lymphocytes_percent"
    MONOCYTES = "monocytes"
    HEMOGLOBIN = "hemoglobin"
    PLATELETS = "platelets"
    HEMATOCRIT = "hematocrit"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    SYSTOLIC_BLOOD_PRESSURE = "systolic_blood_pressure"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One usable result, already in the analyte's canonical unit.

    `reported` keeps the value and unit exactly as the source sent them, so a card can show the
    clinician what the lab said as well as what the service computed.
    """

    analyte: Analyte
    value: float
    unit: str
    time: datetime
    source: str
    code: str
    reported: str
    status: str = "final"
    reference_low: float | None = None
    draw: str | None = None
    note: str | None = None
    reported_value: float | None = None
    reported_unit: str | None = None
    reported_at: datetime | None = None

    @property
    def status_label(self) -> str | None:
        """'preliminary' or 'corrected' when the result is not a plain final one: a preliminary result is
        used and said; an amended or corrected one is used and said to be corrected (issue #12)."""
        return {"preliminary": "preliminary", "amended": "corrected", "corrected": "corrected"}.get(self.status)

    @property
    def system_code(self) -> str:
        return f"LOINC {self.code}"


@dataclass(frozen=True, slots=True)
class Demographics:
    patient_id: str | None = None
    birth_date: date | None = None
    sex: str | None = None

    def age_in_months(self, on: date) -> int | None:
        if self.birth_date is None:
            return None
        months = (on.year - self.birth_date.year) * 12 + on.month - self.birth_date.month
        return months - (on.day < self.birth_date.day)


@dataclass(frozen=True, slots=True)
class CodedFact:
    """A coded clinical statement (Condition, AllergyIntolerance, ...) with where it came from."""

    category: str
    display: str
    code: str
    source: str
    since: date | None = None
    status: str = "active"
    abated: date | None = None


ACTIVE_STATUSES = frozenset({"active", "on-hold", "draft"})


@dataclass(frozen=True, slots=True)
class MedicationFact:
    ingredients: tuple[str, ...]
    groups: frozenset[str]
    recognised_by: str
    text: str
    source: str
    status: str
    authored_on: datetime | None = None
    resource: Json | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def in_group(self, group: str) -> bool:
        return group in self.groups


@dataclass(frozen=True, slots=True)
class AllergyFact:
    substance: str
    groups: frozenset[str]
    immediate: bool | None
    reactions: tuple[str, ...]
    criticality: str | None
    source: str

    def in_group(self, group: str) -> bool:
        return group in self.groups

    @property
    def reaction_text(self) -> str:
        return ", ".join(self.reactions) if self.reactions else "reaction not recorded"


@dataclass(frozen=True, slots=True)
class EncounterFact:
    setting: str | None
    class_display: str
    start: datetime | None
    end: datetime | None
    status: str
    source: str

    def covers(self, moment: datetime) -> bool:
        """Was the patient in this encounter at `moment`? An open in-progress encounter runs until now."""
        if self.start is None or moment < self.start:
            return False
        if self.end is None:
            return self.status in ("in-progress", "arrived", "triaged", "onleave")
        return moment <= self.end


@dataclass(frozen=True, slots=True)
class AdministrationFact:
    """A dose given (MedicationAdministration completed or in progress) of a recognised drug."""

    ingredients: tuple[str, ...]
    groups: frozenset[str]
    text: str
    time: datetime
    source: str


@dataclass(frozen=True, slots=True)
class CultureFact:
    """A blood culture: `taken` for a specimen result (Observation, DiagnosticReport), `ordered` for a
    ServiceRequest."""

    stage: str
    time: datetime | None
    status: str
    source: str


@dataclass(frozen=True, slots=True)
class ClinicalRecord:
    demographics: Demographics
    measurements: tuple[Measurement, ...] = ()
    conditions: tuple[CodedFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    encounters: tuple[EncounterFact, ...] = ()
    administrations: tuple[AdministrationFact, ...] = ()
    blood_cultures: tuple[CultureFact, ...] = ()
    issues: tuple[DataIssue, ...] = ()
    pregnancy_status: tuple[CodedFact, ...] = ()

    def series(self, analyte: Analyte) -> tuple[Measurement, ...]:
        """Results for one analyte, oldest first."""
        return tuple(m for m in self.measurements if m.analyte is analyte)

    def has_condition(self, category: str) -> bool:
        return any(c.category == category and c.status == "active" for c in self.conditions)

    def active_medications(self, group: str) -> tuple[MedicationFact, ...]:
        return tuple(m for m in self.medications if m.active and m.in_group(group))
