"""Numbers in the form clinicians write them: ANC 1.0, platelets 42, Hb 7.9 g/dL, 38.6 °C.

A displayed value never rounds across a threshold it was judged by: ANC 0.095 judged against
"< 0.1" is shown as 0.095, not 0.1. Units follow the value.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_mappings import Analyte

NAMES = {
    Analyte.ABSOLUTE_NEUTROPHIL_COUNT: "ANC",
    Analyte.WHITE_BLOOD_CELLS: "WBC",
    Analyte.LYMPHOCYTES: "lymphocytes",
    Analyte.HEMOGLOBIN: "Hb",
    Analyte.PLATELETS: "platelets",
    Analyte.MONOCYTES: "monocytes",
    Analyte.BODY_TEMPERATURE: "temperature",
}
UNITS = {
    Analyte.HEMOGLOBIN: "g/dL",
    Analyte.BODY_TEMPERATURE: "°C",
    Analyte.BODY_WEIGHT: "kg",
}
COUNT_UNIT = "×10⁹/L"
MAX_DECIMALS = 4


def _decimals(analyte: Analyte, value: float) -> tuple[int, int]:
    """(minimum, maximum) decimals: platelets whole, Hb and temperature one, other counts one or two."""
    if analyte is Analyte.PLATELETS:
        return 0, 0
    if analyte in (Analyte.HEMOGLOBIN, Analyte.BODY_TEMPERATURE, Analyte.BODY_WEIGHT):
        return 1, 1
    return (1, 2) if abs(value) < 10 else (0, 1)


def _format(value: float, low: int, high: int) -> str:
    text = f"{value:.{high}f}"
    if high > low:
        whole, _, fraction = text.partition(".")
        fraction = fraction.rstrip("0").ljust(low, "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return text


def _same_side(value: float, shown: float, limits: Iterable[float]) -> bool:
    return all((value < limit) == (shown < limit) for limit in limits)


def value_text(analyte: Analyte, value: float, judged_by: Iterable[float | None] = ()) -> str:
    """The value alone, with as many decimals as keep it on the same side of every limit it was judged by."""
    limits = [limit for limit in judged_by if limit is not None]
    low, high = _decimals(analyte, value)
    text = _format(value, low, high)
    while not _same_side(value, float(text), limits) and high < MAX_DECIMALS:
        high += 1
        text = _format(value, max(low, 1), high)
    return text


def unit_of(analyte: Analyte) -> str:
    return UNITS.get(analyte, COUNT_UNIT)


def with_unit(analyte: Analyte, value: float, judged_by: Iterable[float | None] = ()) -> str:
    """'0.3 ×10⁹/L', '7.9 g/dL', '38.6 °C'."""
    return f"{value_text(analyte, value, judged_by)} {unit_of(analyte)}"


def named(analyte: Analyte, value: float, judged_by: Iterable[float | None] = (), unit: bool = True) -> str:
    """'ANC 0.3 ×10⁹/L', 'Hb 7.9 g/dL', 'platelets 42 ×10⁹/L' (or without the unit, for a summary)."""
    name = NAMES.get(analyte, analyte.replace("_", " "))
    shown = with_unit(analyte, value, judged_by) if unit else value_text(analyte, value, judged_by)
    return f"{name} {shown}"


def limit_text(value: float) -> str:
    """A limit from a knowledge row, as the row states it: 0.5, 1.0, 150, 38.3."""
    return f"{value:g}" if value != int(value) or value >= 10 else f"{value:.1f}"


def duration(value: float, unit: str) -> str:
    """A duration from a knowledge row in the largest whole unit: 60 min -> '1 h', 48 h -> '48 h'."""
    if unit == "min" and value >= 60 and value % 60 == 0:
        return f"{value / 60:g} h"
    return f"{value:g} {unit}"
