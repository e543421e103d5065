"""Loads the mapping tables shipped in `fhir_mappings/data` once, at import."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.knowledge_tables import knowledge_loader, read_table
from fhir_mappings.facts import Analyte


@dataclass(frozen=True, slots=True)
class LabCode:
    code: str
    analyte: Analyte
    display: str


@dataclass(frozen=True, slots=True)
class AnalyteSpec:
    analyte: Analyte
    dimension: str
    canonical_unit: str
    plausible_min: float
    plausible_max: float
    repair_divisor: float | None
    label: str


@dataclass(frozen=True, slots=True)
class UnitRule:
    factor: float
    offset: float


@knowledge_loader
def lab_codes() -> dict[str, LabCode]:
    return {
        row["code"]: LabCode(row["code"], Analyte(row["analyte"]), row["display"])
        for row in read_table("fhir_mappings", "lab_codes.csv")
    }


@knowledge_loader
def analyte_specs() -> dict[Analyte, AnalyteSpec]:
    specs = {}
    for row in read_table("fhir_mappings", "analytes.csv"):
        analyte = Analyte(row["analyte"])
        specs[analyte] = AnalyteSpec(
            analyte,
            row["dimension"],
            row["canonical_unit"],
            float(row["plausible_min"]),
            float(row["plausible_max"]),
            float(row["repair_divisor"]) if row["repair_divisor"] else None,
            row["label"],
        )
    return specs


def unit_key(unit: str) -> str:
    """Case-, space- and micro-sign-insensitive key: labs send `K/ul`, `K/uL`, `10*3/µL` alike."""
    return unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").casefold()


@knowledge_loader
def unit_rules() -> dict[tuple[str, str], UnitRule]:
    return {
        (row["dimension"], unit_key(row["unit"])): UnitRule(float(row["factor"]), float(row["offset"]))
        for row in read_table("fhir_mappings", "units.csv")
    }
