"""CTCAE v5.0 grades and neutropenia bands: pure functions of a value and a lower limit."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.clinical.knowledge import ctcae_cuts, neutropenia_bands
from fhir_mappings import Analyte
from fhir_mappings.knowledge import analyte_specs, unit_key


@dataclass(frozen=True, slots=True)
class Grade:
    term: str
    grade: int
    source: str
    cited_as: str  # of the cut-off's row: the card names the grade by it

    @property
    def label(self) -> str:
        return f"{self.cited_as} grade {self.grade}"


def ctcae_grade(
    analyte: Analyte, value: float, lower_limit: float | None, reported: tuple[float, str] | None = None
) -> Grade | None:
    """Highest grade whose cut-off the value is below; grade 1 needs a lower limit of normal.

    `value` and `lower_limit` are in the canonical unit. `reported` (value, unit as the lab sent it)
    is graded against CTCAE's cut-offs in that unit where CTCAE prints them (Hb in mmol/L or g/L).
    Boundaries follow CTCAE: a value exactly at a cut-off belongs to the milder grade, so an ANC of
    exactly 1.0 x10^9/L is grade 2. When the LLN is at or below the grade 2 cut-off, a value under
    the LLN is already grade 2 (clinical-knowledge §1.1).
    """
    table = ctcae_cuts()
    graded, cuts = value, table[(analyte, unit_key(analyte_specs()[analyte].canonical_unit))]
    if reported is not None and reported[1] and (in_unit := table.get((analyte, unit_key(reported[1])))):
        graded, cuts = reported[0], in_unit
    for cut in cuts:
        if graded < cut.below:
            return Grade(cut.term, cut.grade, cut.source, cut.cited_as)
    if lower_limit is not None and value < lower_limit:
        return Grade(cuts[0].term, 1, cuts[0].source, cuts[0].cited_as)
    return None


def neutropenia_band(anc: float) -> str | None:
    """mild, moderate, severe or profound for an ANC in x10^9/L (cited in neutropenia_bands.csv), or None."""
    for band, below, _source in neutropenia_bands():
        if anc < below:
            return band
    return None
