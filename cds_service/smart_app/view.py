"""What the SMART app shows, computed by the same pure functions as the hooks, as plain JSON.

The app draws; it never grades, scores or decides. Series, CTCAE bands, nadir and lower limit come
from `clinical.cytopenia`, `clinical.grading`, `clinical.series` and `clinical.trends`; MASCC, CISNE
and the first-hour checklist from `clinical.febrile_neutropenia`, `clinical.risk_scores` and
`clinical.first_hour`. Absent data is said to be "not recorded", never "not given".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cards.cytopenia import UNIT_TEXT
from cards.markdown import number
from cds_service.clinical import febrile_neutropenia
from cds_service.clinical.cytopenia import as_of_view, lower_limit, point_grade
from cds_service.clinical.first_hour import FirstHour, first_hour
from cds_service.clinical.knowledge import ctcae_cuts, risk_cutoff
from cds_service.clinical.risk_scores import ClinicianAnswers, ScoreRange, answered, mascc_caveats
from cds_service.clinical.series import Point, direct_series, neutrophil_series
from cds_service.clinical.trends import trend
from fhir_mappings import Analyte, ClinicalRecord
from fhir_mappings.knowledge import analyte_specs, unit_key

Json = dict[str, Any]
A = Analyte
NO_ANSWERS = ClinicianAnswers()
# The five counts of the trend, in the order the app draws them, with the clinician's short names.
TREND = (
    (A.WHITE_BLOOD_CELLS, "WBC"),
    (A.ABSOLUTE_NEUTROPHIL_COUNT, "ANC"),
    (A.LYMPHOCYTES, "Lymphocytes"),
    (A.HEMOGLOBIN, "Hb"),
    (A.PLATELETS, "Platelets"),
)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _points(analyte: Analyte, record: ClinicalRecord) -> tuple[Point, ...]:
    return neutrophil_series(record) if analyte is A.ABSOLUTE_NEUTROPHIL_COUNT else direct_series(record, analyte)


def _status(point: Point) -> str:
    """'preliminary' when any result it rests on is, else 'corrected' when one is, else 'final'."""
    labels = {m.status_label for m in point.evidence}
    return next((label for label in ("preliminary", "corrected") if label in labels), "final")


def _point(analyte: Analyte, point: Point, record: ClinicalRecord, as_of: datetime) -> Json:
    """A point graded as the cards grade it (a preliminary result is used, and said to be preliminary)."""
    grade = point_grade(analyte, point, lower_limit(record, analyte, point, as_of))
    return {
        "time": _time(point.time),
        "value": round(point.value, 4),
        "text": number(point.value),
        "status": _status(point),
        "grade": grade.grade if grade else None,
        "gradeLabel": grade.label if grade else None,
        "sources": [m.source for m in point.evidence],
        "reported": "; ".join(m.reported for m in point.evidence),
        "derivation": point.derivation,
    }


def _bands(analyte: Analyte, unit: str, lower: float | None) -> list[Json]:
    """CTCAE v5.0 grade bands in the canonical unit, most severe (lowest) first; grade 1 needs a limit."""
    cuts = ctcae_cuts()[(analyte, unit_key(unit))]
    bands, floor = [], 0.0
    ordered = sorted(cuts, key=lambda c: c.below)
    for cut in ordered:
        bands.append(_band(cut.grade, floor, cut.below, unit, cut.source))
        floor = cut.below
    if lower is not None and lower > floor:
        bands.append(_band(1, floor, lower, unit, ordered[-1].source + "; grade 1: below the lower limit"))
    return bands


def _band(grade: int, low: float, high: float, unit: str, source: str) -> Json:
    return {
        "grade": grade,
        "from": low,
        "to": high,
        "label": f"CTCAE grade {grade} (<{number(high)} {UNIT_TEXT.get(unit, unit)})",
        "source": source,
    }


def _series(analyte: Analyte, short: str, record: ClinicalRecord, as_of: datetime) -> Json:
    spec = analyte_specs()[analyte]
    points = _points(analyte, record)
    latest = points[-1] if points else None
    limit = lower_limit(record, analyte, latest, as_of) if latest else None
    series_trend = (
        trend(points, lambda p: (low := lower_limit(record, analyte, p, as_of).value) is not None and p.value < low)
        if points
        else None
    )
    nadir = series_trend.nadir if series_trend else None
    return {
        "analyte": analyte.value,
        "label": short,
        "name": spec.label,
        "unit": UNIT_TEXT.get(spec.canonical_unit, spec.canonical_unit),
        "points": [_point(analyte, p, record, as_of) for p in points],
        "bands": _bands(analyte, spec.canonical_unit, limit.value if limit else None),
        "lowerLimit": {"value": limit.value, "basis": limit.basis} if limit else None,
        "nadir": {
            "time": _time(nadir.time),
            "value": round(nadir.value, 4),
            "text": number(nadir.value),
            "status": _status(nadir),
        }
        if nadir
        else None,
        "recorded": bool(points),
    }


def _score(score: ScoreRange) -> Json:
    return {
        "name": score.name,
        "items": [
            {
                "key": item.key or None,
                "label": item.label,
                "maxPoints": item.max_points,
                "points": item.points,
                "evidence": item.evidence,
            }
            for item in score.items
        ],
        "low": score.low,
        "high": score.high,
        "score": score.low if score.low == score.high else None,
        "riskGroup": score.conclusion,
        "notApplicable": score.not_applicable,
    }


def _mascc(record: ClinicalRecord, score: ScoreRange | None, answers: ClinicianAnswers, as_of: datetime) -> Json:
    """The score with the clinician's answers, its cut-off and its caveats; for a child the FN rules give
    no MASCC, and the adult-only caveat says why."""
    age_months = record.demographics.age_in_months(as_of.date())
    caveats = mascc_caveats(
        None if age_months is None else age_months // 12, record.has_condition("haematological_malignancy")
    )
    cut = risk_cutoff("mascc_low_risk_from")
    if score is not None:
        view = _score(answered(score, answers))
    else:
        adults_only = caveats[0]
        view = {"name": "MASCC", "items": [], "low": None, "high": None, "score": None, "riskGroup": None}
        view["notApplicable"] = adults_only.text
    view["cutOff"] = {"lowRiskFrom": cut.value, "source": cut.source}
    view["caveats"] = [{"text": c.text, "applies": c.applies, "source": c.source} for c in caveats]
    return view


def _first_hour(checklist: FirstHour) -> Json:
    return {
        "feverOnset": _time(checklist.fever_onset),
        "feverEvidence": checklist.fever_evidence,
        "hoursSinceOnset": checklist.hours_since_onset,
        "items": [
            {"label": item.label, "status": item.status, "evidence": item.evidence, "source": item.source}
            for item in checklist.items
        ],
    }


def patient_view(
    record: ClinicalRecord,
    as_of: datetime,
    answers: ClinicianAnswers = NO_ANSWERS,
    not_read: tuple[str, ...] = (),
) -> Json:
    """Everything the app draws for one patient as of `as_of`; `not_read` names the resource types the
    app could not read (so their absence is not taken as 'none')."""
    fn = febrile_neutropenia.assess(record, as_of, conditions_available="Condition" not in not_read)
    current = as_of_view(record, as_of)
    return {
        "asOf": _time(as_of),
        "series": [_series(analyte, short, current, as_of) for analyte, short in TREND],
        "mascc": _mascc(record, fn.mascc, answers, as_of),
        "cisne": _score(fn.cisne) if fn.cisne else None,
        "firstHour": _first_hour(first_hour(fn, record, as_of, not_read)),
        "notRead": list(not_read),
        "issues": [{"source": issue.source, "problem": issue.problem} for issue in record.issues],
    }
