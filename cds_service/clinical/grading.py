"""CTCAE v5.0 grades and neutropenia bands: pure functions of a value and a lower limit."""
from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.knowledge import ctcae_cuts, neutropenia_bands
from fhir_mappings import Analyte


@dataclass(frozen=True, slots=True)
class Grade:
    term: str
    grade: int
    source: str

    @property
    def label(self) -> str:
        return f"CTCAE v5 grade {self.grade}"


def ctcae_grade(analyte: Analyte, value: float, lower_limit: float | None) -> Grade | None:
    """Highest grade whose cut-off the value is below; grade 1 needs a lower limit of normal.

    Boundaries follow CTCAE: a value exactly at a cut-off belongs to the milder grade, so an ANC of
    exactly 1.0 x10^9/L is grade 2. When the LLN is at or below the grade 2 cut-off, a value under
    the LLN is already grade 2 (clinical-knowledge §1.1).
    """
    cuts = ctcae_cuts()[analyte]
    for cut in cuts:
        if value < cut.below:
            return Grade(cut.term, cut.grade, cut.source)
    if lower_limit is not None and value < lower_limit:
        return Grade(cuts[0].term, 1, cuts[0].source)
    return None


def neutropenia_band(anc: float) -> tuple[str, str] | None:
    """(band, source) for an ANC in x10^9/L: mild, moderate, severe, profound, or None."""
    for band, below, source in neutropenia_bands():
        if anc < below:
            return band, source
    return None
