"""Unit normalisation by an explicit table, never by a generic UCUM library.

A generic UCUM engine reads `K/uL` as kelvin per microlitre; lab feeds mean thousands per
microlitre. Only units listed in `data/units.csv` are accepted, each with its source.
"""
from __future__ import annotations

from dataclasses import dataclass

from fhir_mappings.knowledge import AnalyteSpec, unit_key, unit_rules


@dataclass(frozen=True, slots=True)
class Normalised:
    value: float
    note: str | None = None


class UnusableValue(ValueError):
    """The value cannot be used; the message says why, in words a clinician understands."""


def normalise(value: float, unit: str | None, spec: AnalyteSpec) -> Normalised:
    if not unit:
        raise UnusableValue(f"{spec.label} {value:g} has no unit")
    rule = unit_rules().get((spec.dimension, unit_key(unit)))
    if rule is None:
        raise UnusableValue(f"{spec.label} {value:g} has unit '{unit}', which is not an accepted unit for it")
    converted = (value + rule.offset) * rule.factor
    if spec.plausible_min <= converted <= spec.plausible_max:
        return Normalised(converted)
    if spec.repair_divisor and spec.plausible_min <= converted / spec.repair_divisor <= spec.plausible_max:
        repaired = converted / spec.repair_divisor
        return Normalised(
            repaired,
            f"reported as {value:g} {unit}, implausible for that unit; read as cells/uL, i.e. "
            f"{repaired:g} {spec.canonical_unit}",
        )
    raise UnusableValue(
        f"{spec.label} {value:g} {unit} is outside the plausible range "
        f"{spec.plausible_min:g}-{spec.plausible_max:g} {spec.canonical_unit}"
    )
