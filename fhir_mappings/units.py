"""Unit normalisation by an explicit table, never by a generic UCUM library.

A generic UCUM engine reads `K/uL` as kelvin per microlitre; lab feeds mean thousands per
microlitre. Only units listed in `data/units.csv` are accepted, each with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.knowledge import AnalyteSpec, unit_key, unit_rules

# Conversions are rounded so that 1000 cells/uL is exactly 1.0 x10^9/L and lands on the CTCAE boundary.
DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Normalised:
    value: float
    note: str | None = None


class UnusableValue(ValueError):
    """The value cannot be used; the message says why, in words a clinician understands."""


def normalise(value: float, unit: str | None, spec: AnalyteSpec) -> Normalised:
    """The value in the analyte's canonical unit.

    A count labelled in thousands (x10^3/uL, K/uL, 10*9/L) that is implausible for that unit but
    plausible once divided by the analyte's repair divisor was sent in cells/uL (the Synthea AML
    module's ANC of 250-500 labelled 10*3/uL); it is repaired and the repair is said in the note.
    Anything else outside the plausible range is rejected.
    """
    if not unit:
        raise UnusableValue(f"{spec.label} {value:g} has no unit")
    rule = unit_rules().get((spec.dimension, unit_key(unit)))
    if rule is None:
        raise UnusableValue(f"{spec.label} {value:g} has unit '{unit}', which is not an accepted unit for it")
    converted = round((value + rule.offset) * rule.factor, DECIMALS)
    if spec.plausible_min <= converted <= spec.plausible_max:
        return Normalised(converted)
    thousands_unit = rule.factor == 1 and rule.offset == 0
    if (
        spec.repair_divisor
        and thousands_unit
        and spec.plausible_min <= converted / spec.repair_divisor <= spec.plausible_max
    ):
        repaired = round(converted / spec.repair_divisor, DECIMALS)
        return Normalised(
            repaired,
            f"reported as {value:g} {unit}, implausible for that unit; read as cells/uL, i.e. "
            f"{repaired:g} {spec.canonical_unit}",
        )
    raise UnusableValue(
        f"{spec.label} {value:g} {unit} is outside the plausible range "
        f"{spec.plausible_min:g}-{spec.plausible_max:g} {spec.canonical_unit}"
    )
