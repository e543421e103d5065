"""The cytopenia rules as a clinician would check them: ANC derivation, grades, pancytopenia,
Duffy-null reading, WHO anaemia, trends, staleness and what is missing."""

from __future__ import annotations

import pytest

from cds_service.clinical.cytopenia import assess
from cds_service.clinical.findings import FindingKind
from tests.builders import (
    ANC,
    BANDS,
    BANDS_PCT,
    HB,
    HB_MOLAR,
    NEUT_PCT,
    PLT,
    SEGS,
    SEGS_PCT,
    WBC,
    condition,
    day,
    draw,
    observation,
    patient,
    record_of,
)


def findings(*resources, as_of=None, patient_resource=None):
    as_of = as_of or day(1)
    return assess(record_of(*resources, patient_resource=patient_resource), as_of)


def neutropenia(*resources, **kw):
    return findings(*resources, **kw).finding(FindingKind.NEUTROPENIA)


def test_reported_anc_0_9_is_grade_3_moderate():
    finding = neutropenia(observation(ANC, 0.9))
    assert (finding.grade.grade, finding.severity, finding.latest.value) == (3, "moderate", 0.9)


def test_anc_exactly_1_0_is_grade_2_and_exactly_0_5_is_grade_3():
    assert neutropenia(observation(ANC, 1.0)).grade.grade == 2
    assert neutropenia(observation(ANC, 0.5)).grade.grade == 3


def test_anc_derived_from_wbc_and_total_neutrophil_percent_without_adding_bands():
    finding = neutropenia(*draw((WBC, 2.0), (NEUT_PCT, 20), (BANDS_PCT, 5)))
    assert finding.latest.value == pytest.approx(0.4)
    assert "bands already included" in finding.latest.derivation
    assert finding.grade.grade == 4


def test_anc_derived_from_segmented_percent_adds_bands_scnir_example():
    """SCNIR: WBC 2.0, segs 14.8 %, bands 5.0 % -> ANC 0.396."""
    finding = neutropenia(*draw((WBC, 2.0), (SEGS_PCT, 14.8), (BANDS_PCT, 5.0)))
    assert finding.latest.value == pytest.approx(0.396)
    assert "segmented 14.8%" in finding.latest.derivation and "bands 5%" in finding.latest.derivation


def test_anc_from_absolute_segs_plus_bands():
    finding = neutropenia(*draw((SEGS, 0.6), (BANDS, 0.2)))
    assert finding.latest.value == pytest.approx(0.8)


def test_a_reported_anc_is_preferred_over_the_differential():
    finding = neutropenia(*draw((WBC, 2.0), (NEUT_PCT, 20), (ANC, 0.45)))
    assert finding.latest.value == 0.45 and finding.latest.derivation is None


def test_wbc_and_percent_from_different_draws_are_never_combined():
    assessment = findings(*draw((WBC, 2.0), on=0), *draw((NEUT_PCT, 20), on=0.5))
    assert assessment.finding(FindingKind.NEUTROPENIA) is None
    assert any("neutropenia cannot be assessed" in m for m in assessment.missing)


def test_grade_1_uses_the_labs_lower_limit_and_says_so():
    finding = neutropenia(observation(ANC, 1.7, low=1.8))
    assert finding.grade.grade == 1
    assert finding.lower_limit.basis == "the lab's reference range"


def test_without_a_lab_range_the_anc_default_lln_is_said():
    assessment = findings(observation(ANC, 1.6))
    assert assessment.finding(FindingKind.NEUTROPENIA) is None


def test_normal_counts_give_no_finding():
    assessment = findings(*draw((WBC, 6.0), (ANC, 3.5), (HB, 14.0), (PLT, 250)))
    assert assessment.findings == () and assessment.missing == ()


def test_pancytopenia_when_all_three_lineages_are_low_on_the_same_draw():
    assessment = findings(*draw((ANC, 0.8), (HB, 9.0), (PLT, 60)))
    pancytopenia = assessment.finding(FindingKind.PANCYTOPENIA)
    assert pancytopenia is not None
    assert {f.kind for f in pancytopenia.lineages} == {
        FindingKind.NEUTROPENIA,
        FindingKind.ANAEMIA,
        FindingKind.THROMBOCYTOPENIA,
    }
    assert pancytopenia.grade_number == 3


def test_pancytopenia_uses_wbc_when_no_anc_is_reported():
    assert findings(*draw((WBC, 1.5), (HB, 9.0), (PLT, 60))).finding(FindingKind.PANCYTOPENIA) is not None


def test_no_pancytopenia_from_low_counts_on_different_draws():
    assessment = findings(*draw((ANC, 0.8), on=0), *draw((HB, 9.0), (PLT, 60), on=0.5))
    assert assessment.finding(FindingKind.PANCYTOPENIA) is None
    assert assessment.finding(FindingKind.NEUTROPENIA) and assessment.finding(FindingKind.THROMBOCYTOPENIA)


def test_no_pancytopenia_when_one_lineage_is_normal():
    assert findings(*draw((ANC, 0.8), (HB, 14.0), (PLT, 60))).finding(FindingKind.PANCYTOPENIA) is None


def test_duffy_null_anc_within_its_interval_is_not_neutropenia_but_keeps_the_ctcae_grade():
    finding = neutropenia(observation(ANC, 1.3), condition("Duffy-null phenotype Fy(a-b-)"))
    assert finding.significant is False
    assert finding.grade.grade == 2
    assert "Duffy-null reference interval" in finding.notes[0]


def test_duffy_null_anc_below_the_duffy_null_limit_is_still_neutropenia():
    finding = neutropenia(observation(ANC, 1.0), condition("Benign ethnic neutropenia"))
    assert finding.significant is True
    assert "below even the Duffy-null lower limit 1.21" in finding.notes[0]


def test_duffy_null_boundary_1_21_is_within_the_interval():
    assert neutropenia(observation(ANC, 1.21), condition("Duffy null")).significant is False


def test_duffy_null_changes_nothing_for_patients_without_it():
    assert neutropenia(observation(ANC, 1.3)).significant is True


def test_duffy_null_wbc_within_its_interval_is_not_leukopenia():
    finding = findings(observation(WBC, 2.9, low=4.0), condition("Duffy-null")).finding(FindingKind.LEUKOPENIA)
    assert finding.significant is True  # 2.9 is below the Duffy-null WBC limit 3.00
    finding = findings(observation(WBC, 3.2, low=4.0), condition("Duffy-null")).finding(FindingKind.LEUKOPENIA)
    assert finding.grade.grade == 1 and finding.significant is False


def test_trend_gives_nadir_and_falling():
    finding = neutropenia(
        observation(ANC, 1.2, on=0),
        observation(ANC, 0.4, on=3),
        observation(ANC, 0.7, on=6),
        observation(ANC, 0.6, on=9),
        as_of=day(9),
    )
    assert finding.trend.count == 4
    assert (finding.trend.nadir.value, finding.trend.nadir.time) == (0.4, day(3))
    assert finding.trend.falling is True
    assert finding.trend.low_since == day(0)


def test_a_recovering_count_is_not_falling():
    finding = neutropenia(observation(ANC, 0.4, on=0), observation(ANC, 0.9, on=3), as_of=day(3))
    assert finding.trend.falling is False


def test_low_for_more_than_4_weeks_is_persistent_exactly_4_weeks_is_not():
    base = [observation(ANC, 0.9, on=0), observation(ANC, 0.8, on=14)]
    assert neutropenia(*base, observation(ANC, 0.9, on=28), as_of=day(28)).persistent is False
    assert neutropenia(*base, observation(ANC, 0.9, on=29), as_of=day(29)).persistent is True


def test_a_normal_result_in_between_breaks_persistence():
    finding = neutropenia(
        observation(ANC, 0.9, on=0), observation(ANC, 2.5, on=15), observation(ANC, 0.9, on=30), as_of=day(30)
    )
    assert finding.trend.low_since == day(30) and finding.persistent is False


def test_result_older_than_7_days_is_stale():
    assert neutropenia(observation(ANC, 0.9), as_of=day(7)).stale is False
    stale = neutropenia(observation(ANC, 0.9), as_of=day(8))
    assert stale.stale is True and stale.age_days == pytest.approx(8)


def test_results_after_the_evaluation_moment_are_not_yet_known():
    finding = neutropenia(observation(ANC, 0.9, on=0), observation(ANC, 0.2, on=5), as_of=day(2))
    assert finding.latest.value == 0.9


def test_no_counts_at_all_is_said_never_normal():
    assessment = findings()
    assert assessment.findings == ()
    assert assessment.missing == ("no blood count (WBC, ANC, haemoglobin or platelets) on record",)
    assert assessment.latest_count is None


def test_a_preliminary_result_is_graded():
    assessment = findings(observation(ANC, 0.3, status="preliminary"), observation(WBC, 5.0))
    assert assessment.finding(FindingKind.NEUTROPENIA).grade.grade == 4


def test_who_anaemia_for_an_adult_man_mild_below_13():
    finding = findings(observation(HB, 12.5), patient_resource=patient("male")).finding(FindingKind.ANAEMIA)
    assert finding.severity == "mild" and finding.grade.grade == 1
    assert "WHO 2024 cut-off for men" in finding.lower_limit.basis


def test_who_anaemia_boundary_for_a_woman_12_0_is_not_anaemia():
    assert findings(observation(HB, 12.0), patient_resource=patient("female")).finding(FindingKind.ANAEMIA) is None


def test_anaemia_says_pregnancy_status_was_unknown_only_for_a_woman_of_reproductive_age():
    finding = findings(observation(HB, 11.5), patient_resource=patient("female", "1990-01-01")).finding(
        FindingKind.ANAEMIA
    )
    assert "Pregnancy status not known" in finding.notes[0]
    for resource in (patient("female", "1960-01-01"), patient("male", "1990-01-01")):
        assert findings(observation(HB, 11.5), patient_resource=resource).finding(FindingKind.ANAEMIA).notes == ()


def test_anaemia_severe_ctcae_grade_3_below_8():
    finding = findings(observation(HB, 7.2)).finding(FindingKind.ANAEMIA)
    assert (finding.grade.grade, finding.severity) == (3, "severe")


def test_anaemia_in_mmol_per_litre_6_2_is_grade_1_not_2():
    finding = findings(observation(HB_MOLAR, 6.2), patient_resource=patient("male")).finding(FindingKind.ANAEMIA)
    assert finding.grade.grade == 1


def test_child_uses_the_age_specific_who_cut_off():
    finding = findings(observation(HB, 11.2), patient_resource=patient("female", "2020-01-01")).finding(
        FindingKind.ANAEMIA
    )
    assert "children 5-11 years" in finding.lower_limit.basis


def test_unknown_age_is_said_on_anaemia():
    finding = findings(observation(HB, 7.5), patient_resource={"resourceType": "Patient", "id": "p1"}).finding(
        FindingKind.ANAEMIA
    )
    assert finding.grade.grade == 3 and "could not be chosen" in finding.notes[0]


def test_platelets_grade_1_against_the_default_150_when_no_lab_range():
    finding = findings(observation(PLT, 140)).finding(FindingKind.THROMBOCYTOPENIA)
    assert finding.grade.grade == 1 and "default 150" in finding.lower_limit.basis


def test_wbc_grade_1_is_not_assessed_without_a_lab_range():
    assert findings(observation(WBC, 3.5)).finding(FindingKind.LEUKOPENIA) is None
    assert findings(observation(WBC, 3.5, low=4.0)).finding(FindingKind.LEUKOPENIA).grade.grade == 1
