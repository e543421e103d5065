"""CTCAE v5.0 grades and neutropenia bands at every boundary (a value at a cut-off is the milder grade)."""

from __future__ import annotations

import pytest

from cds_service.clinical.grading import ctcae_grade, neutropenia_band
from fhir_mappings import Analyte


def grade(analyte, value, lln=None, reported=None):
    result = ctcae_grade(analyte, value, lln, reported)
    return result.grade if result else None


@pytest.mark.parametrize(
    "anc, expected",
    [(1.5, None), (1.49, 2), (1.0, 2), (0.99, 3), (0.5, 3), (0.49, 4), (0.0, 4)],
)
def test_neutrophil_count_decreased(anc, expected):
    assert grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, anc) == expected


def test_anc_grade_1_only_below_the_labs_lower_limit():
    assert grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 1.7, lln=1.8) == 1
    assert grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 1.8, lln=1.8) is None
    assert grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 1.7) is None


def test_below_an_lln_at_or_under_the_grade_2_cut_is_already_grade_2():
    assert grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 1.3, lln=1.4) == 2


@pytest.mark.parametrize("wbc, expected", [(3.0, None), (2.99, 2), (2.0, 2), (1.99, 3), (1.0, 3), (0.99, 4), (0.52, 4)])
def test_white_blood_cell_decreased(wbc, expected):
    assert grade(Analyte.WHITE_BLOOD_CELLS, wbc) == expected


@pytest.mark.parametrize("alc, expected", [(0.8, None), (0.79, 2), (0.5, 2), (0.49, 3), (0.2, 3), (0.19, 4)])
def test_lymphocyte_count_decreased(alc, expected):
    assert grade(Analyte.LYMPHOCYTES, alc) == expected


@pytest.mark.parametrize("plt, expected", [(75, None), (74.9, 2), (50, 2), (49, 3), (25, 3), (24, 4)])
def test_platelet_count_decreased(plt, expected):
    assert grade(Analyte.PLATELETS, plt) == expected


@pytest.mark.parametrize("hb, expected", [(10.0, None), (9.9, 2), (8.0, 2), (7.9, 3), (4.0, 3)])
def test_anaemia_grades_stop_at_3_because_grade_4_is_clinical(hb, expected):
    assert grade(Analyte.HEMOGLOBIN, hb) == expected


@pytest.mark.parametrize("mmol, expected", [(6.2, None), (6.1, 2), (4.9, 2), (4.8, 3)])
def test_haemoglobin_in_mmol_per_litre_uses_ctcae_own_molar_cut_offs(mmol, expected):
    """6.2 mmol/L converts to 9.99 g/dL; CTCAE still calls 6.2 mmol/L the grade 1/2 boundary."""
    assert grade(Analyte.HEMOGLOBIN, mmol * 1.6113, reported=(mmol, "mmol/L")) == expected


def test_haemoglobin_grade_1_against_lln_whatever_the_reported_unit():
    assert grade(Analyte.HEMOGLOBIN, 6.5 * 1.6113, lln=12.0, reported=(6.5, "mmol/L")) == 1


@pytest.mark.parametrize("g_per_l, expected", [(100, None), (99, 2), (80, 2), (79, 3)])
def test_haemoglobin_in_grams_per_litre(g_per_l, expected):
    assert grade(Analyte.HEMOGLOBIN, g_per_l / 10, reported=(g_per_l, "g/L")) == expected


def test_grade_label_is_written_as_clinicians_read_it():
    assert ctcae_grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 0.9, None).label == "CTCAE v5 grade 3"
    assert ctcae_grade(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 0.9, None).term == "Neutrophil count decreased"


@pytest.mark.parametrize(
    "anc, band",
    [
        (1.5, None),
        (1.49, "mild"),
        (1.0, "mild"),
        (0.99, "moderate"),
        (0.5, "moderate"),
        (0.49, "severe"),
        (0.1, "severe"),
        (0.09, "profound"),
    ],
)
def test_classic_neutropenia_bands(anc, band):
    assert neutropenia_band(anc) == band
