"""What the clinical logic concludes, as plain immutable data for the card layer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from cds_service.clinical.grading import Grade
from cds_service.clinical.series import Point
from cds_service.clinical.trends import Trend
from fhir_mappings import Analyte, DataIssue


class FindingKind(StrEnum):
    NEUTROPENIA = "neutropenia"
    LEUKOPENIA = "leukopenia"
    LYMPHOPENIA = "lymphopenia"
    ANAEMIA = "anaemia"
    THROMBOCYTOPENIA = "thrombocytopenia"
    PANCYTOPENIA = "pancytopenia"


@dataclass(frozen=True, slots=True)
class LowerLimit:
    value: float | None
    basis: str


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    analyte: Analyte
    latest: Point
    lower_limit: LowerLimit
    grade: Grade | None = None
    severity: str | None = None
    trend: Trend | None = None
    persistent: bool = False
    age_days: float = 0.0
    stale: bool = False
    history: bool = False
    notes: tuple[str, ...] = ()
    lineages: tuple[Finding, ...] = ()
    significant: bool = True

    @property
    def grade_number(self) -> int:
        if self.lineages:
            return max(f.grade_number for f in self.lineages)
        return self.grade.grade if self.grade else 0


@dataclass(frozen=True, slots=True)
class Assessment:
    as_of: datetime
    findings: tuple[Finding, ...]
    issues: tuple[DataIssue, ...]
    missing: tuple[str, ...]
    latest_count: datetime | None
    ungraded: tuple[str, ...] = ()  # results on record that no cut-off can grade (an infant's Hb without a lab range)

    def finding(self, kind: FindingKind) -> Finding | None:
        return next((f for f in self.findings if f.kind is kind), None)
