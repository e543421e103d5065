"""The prefilter's limits, read from the same knowledge tables as the hooks, at their most lenient.

A patient passes the prefilter when any result could make any rule fire: a count below the highest
cut-off any rule uses for it (CTCAE grades, default lower limits, WHO anaemia cut-offs for any
population, Duffy-null limits, the febrile-neutropenia ANC limits), a count below the lab's own lower
limit, a derived ANC that could be low, a fever at the lowest fever threshold, falling neutrophil counts
the IDSA 48-hour projection could carry below its limit, or an order an order rule checks. A margin in
time (a day) and in value (rounding) only ever keeps more patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.clinical.knowledge import anaemia_cutoffs, ctcae_cuts, fn_rule, threshold, thresholds
from cds_service.clinical.order_safety import COUNT_RULES, OTHER_RULES
from fhir_mappings import Analyte
from fhir_mappings.knowledge import analyte_specs, unit_rules

A = Analyte
TIME_MARGIN = timedelta(days=1)
VALUE_MARGIN = 1.000001
NEUTROPHIL_PERCENTS = (A.NEUTROPHILS_PERCENT, A.SEGMENTED_NEUTROPHILS_PERCENT)
NEUTROPHIL_INPUTS = (
    A.ABSOLUTE_NEUTROPHIL_COUNT,
    A.SEGMENTED_NEUTROPHILS,
    A.BAND_NEUTROPHILS,
    A.WHITE_BLOOD_CELLS,
    A.NEUTROPHILS_PERCENT,
    A.SEGMENTED_NEUTROPHILS_PERCENT,
    A.BAND_NEUTROPHILS_PERCENT,
)
FEVER_RULES = ("idsa_fever_single", "idsa_fever_sustained", "ctcae_fever_single", "ctcae_fever_sustained")
HELD_STATUSES = ("on-hold", "stopped")
# Thresholds (thresholds.csv / febrile_neutropenia.csv) that are lower limits of a count, by analyte.
NAMED_LIMITS = {
    A.ABSOLUTE_NEUTROPHIL_COUNT: (
        "default_lln_absolute_neutrophil_count",
        "duffy_null_lln_absolute_neutrophil_count",
    ),
    A.WHITE_BLOOD_CELLS: ("duffy_null_lln_white_blood_cells",),
    A.PLATELETS: ("default_lln_platelets",),
}
FN_ANC_LIMITS = ("idsa_neutropenia_anc", "ctcae_fn_anc")


def _canonical(analyte: Analyte, value: float, unit: str) -> float:
    rule = unit_rules()[(analyte_specs()[analyte].dimension, unit)]
    return (value + rule.offset) * rule.factor


def count_limits() -> dict[Analyte, float]:
    """Per analyte, in its canonical unit, the highest value below which some rule could report it."""
    limits: dict[Analyte, float] = {}

    def keep(analyte: Analyte, value: float) -> None:
        limits[analyte] = max(limits.get(analyte, value), value)

    for (analyte, unit), cuts in ctcae_cuts().items():
        for cut in cuts:
            keep(analyte, _canonical(analyte, cut.below, unit))
    for analyte, names in NAMED_LIMITS.items():
        for name in names:
            keep(analyte, thresholds()[name].value)
            keep(analyte, threshold(name).value)  # a site may have raised it
    for name in FN_ANC_LIMITS:
        keep(A.ABSOLUTE_NEUTROPHIL_COUNT, fn_rule(name).value)
    for cutoff in anaemia_cutoffs():
        keep(A.HEMOGLOBIN, cutoff.anaemia_below)
    # The ANC is the segmented count plus bands, so a segmented count below the ANC limit may be a low ANC.
    keep(A.SEGMENTED_NEUTROPHILS, limits[A.ABSOLUTE_NEUTROPHIL_COUNT])
    return {analyte: value * VALUE_MARGIN for analyte, value in limits.items()}


def order_groups() -> tuple[str, ...]:
    """Every medication group an order rule checks (clozapine, TKIs, chemotherapy, G-CSF, ...)."""
    groups = [group for group, _ in COUNT_RULES] + [g for groups, _ in OTHER_RULES for g in groups]
    return tuple(dict.fromkeys(groups))


@dataclass(frozen=True, slots=True)
class Window:
    """The moments the prefilter compares result times with, margins included."""

    latest: datetime
    fever_from: datetime
    trend_from: datetime


def window(as_of: datetime, fever_lookback_hours: float | None = None) -> Window:
    fever_hours = max(fn_rule("fever_lookback_hours").value, fever_lookback_hours or 0)
    trend_hours = fn_rule("anc_max_age_hours").value + fn_rule("anc_prediction_window_hours").value
    return Window(
        as_of + TIME_MARGIN,
        as_of - timedelta(hours=fever_hours) - TIME_MARGIN,
        as_of - timedelta(hours=trend_hours) - TIME_MARGIN,
    )


def fever_from() -> float:
    return min(fn_rule(name).value for name in FEVER_RULES)
