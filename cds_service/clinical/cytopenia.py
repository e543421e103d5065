"""Cytopenia assessment of one patient as of a moment: the core rule set of patient-view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from cds_service.clinical.anaemia import (
    pregnancy,
    pregnancy_possible,
    who_cutoff,
    who_severity,
    youngest_who_months,
)
from cds_service.clinical.findings import Assessment, Finding, FindingKind, LowerLimit
from cds_service.clinical.grading import Grade, ctcae_grade, neutropenia_band
from cds_service.clinical.knowledge import AnaemiaCutoff, threshold, who_citation
from cds_service.clinical.series import Point, direct_series, neutrophil_series
from cds_service.clinical.trends import trend
from fhir_mappings import Analyte, ClinicalRecord

COUNT_ANALYTES = (Analyte.WHITE_BLOOD_CELLS, Analyte.ABSOLUTE_NEUTROPHIL_COUNT, Analyte.HEMOGLOBIN, Analyte.PLATELETS)


def as_of_view(record: ClinicalRecord, as_of: datetime) -> ClinicalRecord:
    """The record as it stood at `as_of`: later results are not yet known."""
    return replace(record, measurements=tuple(m for m in record.measurements if m.time <= as_of))


def _lab_or(point: Point, default: float | None, default_basis: str) -> LowerLimit:
    if point.reference_low is not None:
        return LowerLimit(point.reference_low, "the lab's reference range")
    return LowerLimit(default, default_basis)


DEFAULT_LOWER_LIMITS = {
    Analyte.ABSOLUTE_NEUTROPHIL_COUNT: "default_lln_absolute_neutrophil_count",
    Analyte.PLATELETS: "default_lln_platelets",
}


def lower_limit(record: ClinicalRecord, analyte: Analyte, point: Point, as_of: datetime) -> LowerLimit:
    """The limit a result is read against: the lab's own, else the cited default (the WHO 2024 cut-off
    for age, sex and pregnancy for haemoglobin); WBC and lymphocytes have no default."""
    if analyte is Analyte.HEMOGLOBIN:
        cutoff, _notes = haemoglobin_cutoff(record, as_of)
        basis = (
            f"{cutoff.cited_as} cut-off for {cutoff.population}: {cutoff.anaemia_below:g} g/dL"
            if cutoff
            else f"no lab range and no {who_citation()} cut-off"
        )
        return _lab_or(point, cutoff.anaemia_below if cutoff else None, basis)
    if name := DEFAULT_LOWER_LIMITS.get(analyte):
        default = threshold(name)
        return _lab_or(point, default.value, f"no lab range sent; default {default.value:g} ×10⁹/L")
    return _lab_or(point, None, "no lab range sent: grade 1 not assessed")


def point_grade(analyte: Analyte, point: Point, lower_limit: LowerLimit) -> Grade | None:
    """CTCAE grade of a point, in the unit the lab reported it where CTCAE prints cut-offs for it."""
    measured = point.evidence[0]
    value, unit = measured.reported_value, measured.reported_unit
    # A missing unit grades in the canonical unit either way; a measurement always carries both.
    reported = None if point.derivation or value is None or unit is None else (value, unit)
    return ctcae_grade(analyte, point.value, lower_limit.value, reported)


def _finding(
    kind: FindingKind,
    analyte: Analyte,
    points: tuple[Point, ...],
    lower_limit: LowerLimit,
    grade: Grade | None,
    as_of: datetime,
    lower_of: Callable[[Point], float | None] | None = None,
    **extra: Any,
) -> Finding:
    """Wraps the latest point with its trend, persistence and age."""
    latest = points[-1]
    limit_for = lower_of or (lambda p: lower_limit.value)
    series_trend = trend(points, lambda p: (lim := limit_for(p)) is not None and p.value < lim)
    age_days = (as_of - latest.time).total_seconds() / 86400
    return Finding(
        kind=kind,
        analyte=analyte,
        latest=latest,
        lower_limit=lower_limit,
        grade=grade,
        trend=series_trend,
        persistent=bool(series_trend and series_trend.persistent(latest, threshold("persistent_cytopenia_days").value)),
        age_days=age_days,
        stale=age_days > threshold("stale_result_days").value,
        history=age_days > threshold("history_lookback_days").value,
        **extra,
    )


def _neutropenia(record: ClinicalRecord, points: tuple[Point, ...], as_of: datetime) -> Finding | None:
    """`points` is the record's `neutrophil_series`, which `assess` also needs."""
    if not points:
        return None
    latest = points[-1]
    default = threshold("default_lln_absolute_neutrophil_count")
    limit = lower_limit(record, Analyte.ABSOLUTE_NEUTROPHIL_COUNT, latest, as_of)
    grade = point_grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, latest, limit)
    if grade is None:
        return None
    band = neutropenia_band(latest.value)
    notes = []
    significant = True
    if record.has_condition("duffy_null"):
        danc = threshold("duffy_null_lln_absolute_neutrophil_count")
        if latest.value >= danc.value:
            significant = False
            notes.append(
                f"Duffy-null phenotype documented: ANC is within the Duffy-null reference interval "
                f"(lower limit {danc.value:g} ×10⁹/L, {danc.cited_as}), so this is not neutropenia for this patient; "
                "the CTCAE grade is shown unchanged for toxicity reporting."
            )
        else:
            notes.append(
                f"Duffy-null phenotype documented: ANC is below even the Duffy-null lower limit {danc.value:g} ×10⁹/L."
            )
    return _finding(
        FindingKind.NEUTROPENIA,
        Analyte.ABSOLUTE_NEUTROPHIL_COUNT,
        points,
        limit,
        grade,
        as_of,
        lower_of=lambda p: p.reference_low or default.value,
        severity=band,
        notes=tuple(notes),
        significant=significant,
    )


def _graded(
    record: ClinicalRecord,
    as_of: datetime,
    kind: FindingKind,
    analyte: Analyte,
    default_name: str | None = None,
) -> Finding | None:
    points = direct_series(record, analyte)
    if not points:
        return None
    latest = points[-1]
    default = threshold(default_name) if default_name else None
    limit = lower_limit(record, analyte, latest, as_of)
    grade = point_grade(analyte, latest, limit)
    if grade is None:
        return None
    return _finding(
        kind,
        analyte,
        points,
        limit,
        grade,
        as_of,
        lower_of=lambda p: p.reference_low or (default.value if default else None),
    )


def _leukopenia(record: ClinicalRecord, as_of: datetime) -> Finding | None:
    finding = _graded(record, as_of, FindingKind.LEUKOPENIA, Analyte.WHITE_BLOOD_CELLS)
    if finding and record.has_condition("duffy_null"):
        lower = threshold("duffy_null_lln_white_blood_cells").value
        if finding.latest.value >= lower:
            note = (
                "Duffy-null phenotype documented: WBC is within the Duffy-null reference interval (lower "
                f"limit {lower:g} ×10⁹/L)."
            )
            return replace(finding, significant=False, notes=(note,))
    return finding


def haemoglobin_cutoff(record: ClinicalRecord, as_of: datetime) -> tuple[AnaemiaCutoff | None, tuple[str, ...]]:
    """The WHO 2024 cut-off for this patient (age, sex, and pregnancy read from the record), with the notes
    that say which cut-off was chosen and why; the cards and the SMART app read the same one."""
    day = as_of.date()
    status = pregnancy(record, day)
    trimester = status.trimester
    notes = []
    if status.status == "pregnant" and trimester is None:
        trimester = 1
        first, second = (who_cutoff(record.demographics, day, t) for t in (1, 2))
        if first and second:
            notes.append(
                f"Pregnant ({status.evidence}), trimester not recorded: the {first.cited_as} first/third-trimester "
                f"cut-off {first.anaemia_below:g} g/dL is used (second trimester {second.anaemia_below:g} g/dL)."
            )
    elif status.status == "pregnant":
        notes.append(
            f"Pregnant, trimester {trimester} ({status.evidence}): the {who_citation()} cut-off for that trimester "
            "is used."
        )
    cutoff = who_cutoff(record.demographics, day, trimester if status.status == "pregnant" else None)
    if status.status == "pregnant" and cutoff is None:
        cutoff = who_cutoff(record.demographics, day)
    months = record.demographics.age_in_months(day)
    if cutoff is None and months is not None and months < youngest_who_months():
        notes.append(
            f"No {who_citation()} cut-off below {youngest_who_months()} months: graded only against the lab's range."
        )
    elif cutoff is None:
        notes.append(f"Age or sex unknown: the {who_citation()} cut-off could not be chosen.")
    elif status.status == "unknown" and pregnancy_possible(record.demographics, day):
        notes.append(f"Pregnancy status not known: the non-pregnant {who_citation()} cut-off is used.")
    return cutoff, tuple(notes)


def _anaemia(record: ClinicalRecord, as_of: datetime) -> Finding | None:
    points = direct_series(record, Analyte.HEMOGLOBIN)
    if not points:
        return None
    latest = points[-1]
    cutoff, notes = haemoglobin_cutoff(record, as_of)
    limit = lower_limit(record, Analyte.HEMOGLOBIN, latest, as_of)
    grade = point_grade(Analyte.HEMOGLOBIN, latest, limit)
    severity = who_severity(latest.value, cutoff) if cutoff else None
    if grade is None and severity is None:
        return None
    return _finding(
        FindingKind.ANAEMIA,
        Analyte.HEMOGLOBIN,
        points,
        limit,
        grade,
        as_of,
        lower_of=lambda p: p.reference_low or (cutoff.anaemia_below if cutoff else None),
        severity=severity,
        notes=tuple(notes),
    )


def _ungraded_infant_hb(record: ClinicalRecord, as_of: datetime) -> list[str]:
    """Below 6 months WHO has no cut-off: a haemoglobin without the lab's range cannot be graded, and is said."""
    months = record.demographics.age_in_months(as_of.date())
    points = direct_series(record, Analyte.HEMOGLOBIN)
    if months is None or months >= youngest_who_months() or not points or points[-1].reference_low is not None:
        return []
    return [
        f"haemoglobin not graded: no {who_citation()} cut-off below {youngest_who_months()} months and no "
        "reference range from the lab"
    ]


def _pancytopenia(findings: dict[FindingKind, Finding], as_of: datetime) -> Finding | None:
    """All three lineages low on the same draw (white: ANC, or WBC when no ANC was reported)."""
    red = findings.get(FindingKind.ANAEMIA)
    platelets = findings.get(FindingKind.THROMBOCYTOPENIA)
    white = findings.get(FindingKind.NEUTROPENIA) or findings.get(FindingKind.LEUKOPENIA)
    if not (red and platelets and white) or not all(f.significant for f in (red, platelets, white)):
        return None
    if not (
        red.latest.draw == platelets.latest.draw == white.latest.draw
        or red.latest.time == platelets.latest.time == white.latest.time
    ):
        return None
    lineages = (white, red, platelets)
    return Finding(
        kind=FindingKind.PANCYTOPENIA,
        analyte=white.analyte,
        latest=white.latest,
        lower_limit=white.lower_limit,
        age_days=white.age_days,
        stale=white.stale,
        history=white.history,
        persistent=all(f.persistent for f in lineages),
        lineages=lineages,
    )


def assess(record: ClinicalRecord, as_of: datetime) -> Assessment:
    """All cytopenia findings for the record as it stood at `as_of`."""
    record = as_of_view(record, as_of)
    neutrophils = neutrophil_series(record)
    found = {
        kind: finding
        for kind, finding in (
            (FindingKind.NEUTROPENIA, _neutropenia(record, neutrophils, as_of)),
            (FindingKind.LEUKOPENIA, _leukopenia(record, as_of)),
            (FindingKind.LYMPHOPENIA, _graded(record, as_of, FindingKind.LYMPHOPENIA, Analyte.LYMPHOCYTES)),
            (FindingKind.ANAEMIA, _anaemia(record, as_of)),
            (
                FindingKind.THROMBOCYTOPENIA,
                _graded(record, as_of, FindingKind.THROMBOCYTOPENIA, Analyte.PLATELETS, "default_lln_platelets"),
            ),
        )
        if finding is not None
    }
    if pancytopenia := _pancytopenia(found, as_of):
        found[FindingKind.PANCYTOPENIA] = pancytopenia
    counts = [m for m in record.measurements if m.analyte in COUNT_ANALYTES]
    missing = []
    if not counts:
        missing.append("no blood count (WBC, ANC, haemoglobin or platelets) on record")
    else:
        if not neutrophils:
            missing.append("no neutrophil count or differential: neutropenia cannot be assessed")
        for analyte, label in ((Analyte.HEMOGLOBIN, "haemoglobin"), (Analyte.PLATELETS, "platelet count")):
            if not record.series(analyte):
                missing.append(f"no {label}")
    return Assessment(
        as_of=as_of,
        findings=tuple(found.values()),
        issues=record.issues,
        missing=tuple(missing),
        latest_count=max((m.time for m in counts), default=None),
        ungraded=tuple(_ungraded_infant_hb(record, as_of)),
    )
