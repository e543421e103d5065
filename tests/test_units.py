"""Every unit a lab may send is read by an explicit table; implausible magnitudes are repaired or refused."""

from __future__ import annotations

import pytest

from fhir_mappings import Analyte
from fhir_mappings.knowledge import analyte_specs
from fhir_mappings.units import UnusableValue, normalise


def to_canonical(value, unit, analyte):
    return normalise(value, unit, analyte_specs()[analyte])


@pytest.mark.parametrize(
    "value, unit, expected",
    [
        (1.2, "10*3/uL", 1.2),
        (1.2, "10*9/L", 1.2),
        (1.2, "10*3/mm3", 1.2),
        (1.2, "10*6/mL", 1.2),
        (1.2, "K/uL", 1.2),
        (1.2, "K/ul", 1.2),
        (1.2, "K/µL", 1.2),
        (1.2, "x10E3/uL", 1.2),
        (1.2, "10^3/uL", 1.2),
        (1.2, "10³/uL", 1.2),
        (1.2, "thou/uL", 1.2),
        (1.2, "x10^9/L", 1.2),
        (1.2, "10^9/L", 1.2),
        (1200, "/uL", 1.2),
        (1200, "/mm3", 1.2),
        (1200, "{cells}/uL", 1.2),
        (1200, "cells/uL", 1.2),
        (1200, "cells/mm3", 1.2),
    ],
)
def test_every_accepted_count_unit_means_thousands_per_microlitre(value, unit, expected):
    assert to_canonical(value, unit, Analyte.ABSOLUTE_NEUTROPHIL_COUNT).value == expected


@pytest.mark.parametrize(
    "cells, expected", [(1000, 1.0), (500, 0.5), (1500, 1.5), (75000, 75.0), (800, 0.8), (200, 0.2)]
)
def test_cells_per_microlitre_land_exactly_on_ctcae_boundaries(cells, expected):
    assert (
        to_canonical(
            cells, "cells/uL", Analyte.ABSOLUTE_NEUTROPHIL_COUNT if cells < 100_000 else Analyte.PLATELETS
        ).value
        == expected
    )


@pytest.mark.parametrize(
    "value, unit, expected",
    [
        (7.2, "g/dL", 7.2),
        (7.2, "g/dl", 7.2),
        (72, "g/L", 7.2),
        (176, "g/L", 17.6),
        (7.2, "gm/dL", 7.2),
        (6.2, "mmol/L", 9.99),
        (4.9, "mmol/L", 7.8954),
    ],
)
def test_haemoglobin_units_mass_and_molar(value, unit, expected):
    """mmol/L x 1.6113 (monomer basis, 0.6206 the other way): never the tetramer factor 0.155."""
    assert to_canonical(value, unit, Analyte.HEMOGLOBIN).value == pytest.approx(expected, abs=0.001)


def test_haemoglobin_in_percent_is_refused():
    with pytest.raises(UnusableValue, match="not an accepted unit"):
        to_canonical(12, "%", Analyte.HEMOGLOBIN)


@pytest.mark.parametrize(
    "value, unit, celsius",
    [(38.3, "Cel", 38.3), (100.4, "[degF]", 38.0), (101, "[degF]", 38.3333), (100.4, "degF", 38.0), (38.0, "°C", 38.0)],
)
def test_temperature_in_celsius_and_fahrenheit(value, unit, celsius):
    assert to_canonical(value, unit, Analyte.BODY_TEMPERATURE).value == pytest.approx(celsius, abs=1e-3)


def test_percent_units_for_the_differential():
    for unit in ("%", "/100{WBCs}", "/100"):
        assert to_canonical(20, unit, Analyte.NEUTROPHILS_PERCENT).value == 20


def test_an_anc_of_1500_labelled_thousands_is_read_as_cells_and_says_so():
    result = to_canonical(1500, "10*3/uL", Analyte.ABSOLUTE_NEUTROPHIL_COUNT)
    assert result.value == 1.5
    assert "implausible" in result.note and "1.5" in result.note


def test_synthea_aml_anc_of_250_labelled_thousands_is_repaired_to_0_25():
    assert to_canonical(250, "10*3/uL", Analyte.ABSOLUTE_NEUTROPHIL_COUNT).value == 0.25


def test_a_plausible_high_wbc_is_not_repaired():
    result = to_canonical(150, "10*3/uL", Analyte.WHITE_BLOOD_CELLS)
    assert (result.value, result.note) == (150, None)


def test_a_count_already_in_cells_is_never_divided_again():
    with pytest.raises(UnusableValue, match="outside the plausible range"):
        to_canonical(1_500_000, "cells/uL", Analyte.ABSOLUTE_NEUTROPHIL_COUNT)


def test_a_value_implausible_even_after_repair_is_refused():
    with pytest.raises(UnusableValue, match="outside the plausible range"):
        to_canonical(5_000_000, "10*3/uL", Analyte.ABSOLUTE_NEUTROPHIL_COUNT)


def test_negative_count_is_refused():
    with pytest.raises(UnusableValue):
        to_canonical(-1, "10*3/uL", Analyte.WHITE_BLOOD_CELLS)


@pytest.mark.parametrize("unit", ["K", "mg/dL", "10*3/L", "kelvin/uL"])
def test_unknown_units_are_refused_and_named(unit):
    with pytest.raises(UnusableValue, match="not an accepted unit"):
        to_canonical(1.0, unit, Analyte.WHITE_BLOOD_CELLS)


def test_missing_unit_is_refused():
    with pytest.raises(UnusableValue, match="has no unit"):
        to_canonical(1.0, None, Analyte.WHITE_BLOOD_CELLS)
