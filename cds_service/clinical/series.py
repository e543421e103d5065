"""Time series of one analyte, with values derived where the lab did not report them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from fhir_mappings import Analyte, ClinicalRecord, Measurement


@dataclass(frozen=True, slots=True)
class Point:
    """A value at a time, with the results it rests on and, if computed, how."""

    value: float
    time: datetime
    evidence: tuple[Measurement, ...]
    derivation: str | None = None

    @property
    def reference_low(self) -> float | None:
        return self.evidence[0].reference_low if self.derivation is None else None

    @property
    def draw(self) -> str | None:
        return self.evidence[0].draw

    @property
    def status_label(self) -> str | None:
        """'preliminary' if any result it rests on is preliminary, else 'corrected' if any was corrected."""
        labels = {m.status_label for m in self.evidence}
        return next((label for label in ("preliminary", "corrected") if label in labels), None)


def direct_series(record: ClinicalRecord, analyte: Analyte) -> tuple[Point, ...]:
    return tuple(Point(m.value, m.time, (m,)) for m in record.series(analyte))


def _by_draw(record: ClinicalRecord) -> dict[str, dict[Analyte, Measurement]]:
    draws: dict[str, dict[Analyte, Measurement]] = defaultdict(dict)
    for m in record.measurements:
        draws[m.draw or m.time.isoformat()][m.analyte] = m
    return draws


def _derived_anc(draw: dict[Analyte, Measurement]) -> Point | None:
    """ANC from the same draw (clinical-knowledge §8, SCNIR formula).

    Total neutrophil % already includes bands; bands are added only to a segmented-only %.
    """
    wbc = draw.get(Analyte.WHITE_BLOOD_CELLS)
    if (segs := draw.get(Analyte.SEGMENTED_NEUTROPHILS)) is not None:
        bands = draw.get(Analyte.BAND_NEUTROPHILS)
        value = segs.value + (bands.value if bands else 0.0)
        how = "segmented neutrophils" + (" + band neutrophils" if bands else " (no band count on this draw)")
        return Point(value, segs.time, tuple(filter(None, (segs, bands))), f"derived: {how}")
    if wbc is None:
        return None
    if (neut := draw.get(Analyte.NEUTROPHILS_PERCENT)) is not None:
        return Point(
            wbc.value * neut.value / 100,
            wbc.time,
            (wbc, neut),
            f"derived: WBC {wbc.value:g} × neutrophils {neut.value:g}% / 100 (bands already included)",
        )
    if (segs_pct := draw.get(Analyte.SEGMENTED_NEUTROPHILS_PERCENT)) is not None:
        bands_pct = draw.get(Analyte.BAND_NEUTROPHILS_PERCENT)
        total = segs_pct.value + (bands_pct.value if bands_pct else 0.0)
        bands_text = f" + bands {bands_pct.value:g}%" if bands_pct else " (no band % on this draw)"
        return Point(
            wbc.value * total / 100,
            wbc.time,
            tuple(filter(None, (wbc, segs_pct, bands_pct))),
            f"derived: WBC {wbc.value:g} × (segmented {segs_pct.value:g}%{bands_text}) / 100",
        )
    return None


def neutrophil_series(record: ClinicalRecord) -> tuple[Point, ...]:
    """ANC per draw: the lab's absolute count when reported, otherwise derived from the differential."""
    points = []
    for draw in _by_draw(record).values():
        reported = draw.get(Analyte.ABSOLUTE_NEUTROPHIL_COUNT)
        point = Point(reported.value, reported.time, (reported,)) if reported else _derived_anc(draw)
        if point is not None:
            points.append(point)
    return tuple(sorted(points, key=lambda p: p.time))
