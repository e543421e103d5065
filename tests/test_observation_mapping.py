"""Observation JSON -> measurements: statuses, attribution, times, reference ranges, draws."""

from __future__ import annotations

import itertools

from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from fhir_mappings import Analyte, times
from fhir_mappings.patient import _plainly_valid, read_patient
from tests.builders import ANC, HB, PLT, WBC, day, draw, observation, record_of


def test_a_final_result_keeps_value_unit_time_source_and_lab_range():
    record = record_of(observation(ANC, 900, "/uL", low=1800, id="anc-1"))
    [m] = record.measurements
    assert (m.analyte, m.value, m.unit, m.time, m.source, m.code) == (
        Analyte.ABSOLUTE_NEUTROPHIL_COUNT,
        0.9,
        "10*9/L",
        day(0),
        "Observation/anc-1",
        ANC,
    )
    assert m.reference_low == 1.8
    assert m.reported == "900 /uL"


def test_amended_and_corrected_results_are_used():
    record = record_of(observation(WBC, 3.0, status="amended"), observation(WBC, 2.9, status="corrected", on=1))
    assert [m.value for m in record.series(Analyte.WHITE_BLOOD_CELLS)] == [3.0, 2.9]


def test_registered_cancelled_and_entered_in_error_results_are_not_used_and_said():
    record = record_of(
        observation(WBC, 1.0, status="cancelled", id="c"),
        observation(WBC, 0.5, status="entered-in-error", id="e"),
        observation(WBC, 0.7, status="registered", id="r"),
    )
    assert record.measurements == ()
    assert [(i.source, i.problem) for i in record.issues] == [
        ("Observation/c", "was cancelled (status 'cancelled'): not used"),
        ("Observation/e", "was entered in error (status 'entered-in-error'): not used"),
        ("Observation/r", "is registered but has no result yet (status 'registered'): not used"),
    ]


def test_a_preliminary_result_is_used_and_labelled():
    record = record_of(observation(ANC, 0.3, status="preliminary"), observation(WBC, 5.0))
    [anc] = record.series(Analyte.ABSOLUTE_NEUTROPHIL_COUNT)
    assert anc.value == 0.3 and anc.status_label == "preliminary"


def test_a_later_version_of_the_same_draw_replaces_the_earlier_one():
    preliminary = observation(ANC, 0.3, status="preliminary", specimen="Specimen/s1")
    final = observation(ANC, 0.4, status="final", specimen="Specimen/s1")
    corrected = observation(ANC, 0.45, status="corrected", specimen="Specimen/s1")
    assert [m.value for m in record_of(final, preliminary).series(Analyte.ABSOLUTE_NEUTROPHIL_COUNT)] == [0.4]
    [latest] = record_of(corrected, final, preliminary).series(Analyte.ABSOLUTE_NEUTROPHIL_COUNT)
    assert latest.value == 0.45 and latest.status_label == "corrected"


def test_the_version_reported_last_wins_whatever_its_status():
    earlier = observation(ANC, 0.3, status="final", specimen="Specimen/s1")
    earlier["meta"] = {"lastUpdated": "2026-11-01T10:00:00Z"}
    later = observation(ANC, 0.35, status="preliminary", specimen="Specimen/s1")
    later["issued"] = "2026-11-01T12:00:00Z"
    assert [m.value for m in record_of(later, earlier).series(Analyte.ABSOLUTE_NEUTROPHIL_COUNT)] == [0.35]


def test_unknown_status_is_a_reported_issue():
    record = record_of(observation(WBC, 5.0, status="unknown", id="w"))
    assert record.measurements == ()
    assert "status 'unknown'" in record.issues[0].problem and record.issues[0].source == "Observation/w"


def test_results_of_another_patient_or_without_subject_are_refused():
    record = record_of(observation(WBC, 1.0, subject="Patient/someone-else"), observation(WBC, 1.0, subject=None))
    assert record.measurements == ()
    assert all("not attributed to this patient" in i.problem for i in record.issues) and len(record.issues) == 2


def test_urn_uuid_and_absolute_subject_references_are_this_patient():
    record = record_of(
        observation(WBC, 4.0, subject="urn:uuid:p1"), observation(WBC, 4.1, subject="https://ehr/fhir/Patient/p1")
    )
    assert len(record.measurements) == 2


def test_a_result_without_a_number_says_why():
    result = observation(HB, 7.0)
    del result["valueQuantity"]
    result["dataAbsentReason"] = {"coding": [{"code": "error"}]}
    record = record_of(result)
    assert "no numeric value (data absent: error)" in record.issues[0].problem


def test_a_boolean_value_is_not_a_number():
    record = record_of(observation(HB, True))
    assert record.measurements == () and "no numeric value" in record.issues[0].problem


def test_a_result_without_time_is_refused():
    result = observation(PLT, 200)
    del result["effectiveDateTime"]
    assert "no usable effective time" in record_of(result).issues[0].problem


def test_issued_is_used_when_there_is_no_effective_time():
    result = observation(PLT, 200)
    result["issued"] = result.pop("effectiveDateTime")
    assert record_of(result).measurements[0].time == day(0)


def test_zero_or_missing_reference_low_is_no_limit():
    """About 17 % of SMART sample results carry a bogus referenceRange; 0 is never a real lower limit."""
    [m] = record_of(observation(PLT, 120, low=0)).measurements
    assert m.reference_low is None


def test_an_unknown_unit_is_rejected_and_reported_never_used():
    record = record_of(observation(WBC, 4.0, "K", id="w1"))
    assert record.measurements == ()
    assert record.issues[0].source == "Observation/w1" and "'K'" in record.issues[0].problem


def test_repaired_magnitude_is_kept_with_a_note():
    [m] = record_of(observation(ANC, 1500, "10*3/uL")).measurements
    assert m.value == 1.5 and "implausible" in m.note


def test_codes_outside_the_catalogue_are_not_read_and_display_text_is_never_matched():
    other = observation(WBC, 1.0)
    other["code"] = {
        "coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Leukocytes [#/volume] in Blood"}]
    }
    assert record_of(other).measurements == ()


def test_results_of_one_diagnostic_report_share_a_draw():
    record = record_of(*draw((WBC, 2.0), (HB, 9.0), name="cbc-1"))
    assert {m.draw for m in record.measurements} == {"DiagnosticReport/cbc-1"}


def test_results_sharing_a_specimen_share_a_draw():
    record = record_of(
        observation(WBC, 2.0, specimen="Specimen/s1"), observation(HB, 9.0, on=0.01, specimen="Specimen/s1")
    )
    assert {m.draw for m in record.measurements} == {"Specimen/s1"}


def test_an_operation_outcome_error_in_the_data_is_reported():
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}],
    }
    record = record_of(outcome)
    assert "search timed out" in record.issues[0].problem


def test_patient_without_birth_date_or_sex_gives_unknown_demographics():
    record = record_of(patient_resource={"resourceType": "Patient", "id": "p1"})
    assert record.demographics.birth_date is None and record.demographics.sex is None


def test_invalid_patient_is_read_as_sent_and_reported():
    record = record_of(
        patient_resource={"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-02-30"}
    )
    assert record.demographics.sex == "female" and record.demographics.birth_date is None
    assert "not valid FHIR R4" in record.issues[0].problem


def test_a_patient_read_without_the_r4b_model_is_one_the_model_accepts_and_reads_the_same():
    """The plain case skips the model only where the model would accept it and read the same birth date and sex."""
    ids = [None, "abc", "a" * 64, "a" * 65, "a b", "x_y", "é", "1.2-3", "", "abc\n", 5]
    genders = [None, "male", "female", "other", "unknown", "Male", " male", "foo", 1, ["male"], {"code": "male"}]
    dates = [None, "1953-04-23", "1953", "1953-04", "2020-02-29", "2019-02-29", "0000-01-01", "0001-01-01"]
    dates += ["1953-4-23", "1953-04-23T00:00:00", "١٩٥٣-04-23", "1953-13-01", "9999-12-31", 19530423, "1953-04-23\n"]
    plain = 0
    for kind, pid, gender, birth in itertools.product([None, "Patient", "Observation"], ids, genders, dates):
        given = (("resourceType", kind), ("id", pid), ("gender", gender), ("birthDate", birth))
        elements = {k: v for k, v in given if v is not None}
        if (read := _plainly_valid(elements)) is None:
            continue
        plain += 1
        try:
            patient = Patient.model_validate(elements)
        except ValidationError as error:
            raise AssertionError(f"{elements} read without the model, which rejects it") from error
        assert read == (patient.birthDate, patient.gender) and type(read[0]) is type(patient.birthDate)
    assert plain == 100


def test_a_patient_whose_gender_is_not_a_string_is_reported_not_a_crash():
    """A list or object where a code belongs is the model's to reject and the record's to report."""
    for gender in (["male"], {"code": "male"}):
        demographics, issues = read_patient({"resourceType": "Patient", "id": "p1", "gender": gender}, "p1")
        assert demographics.sex is None and issues and "not valid FHIR R4" in issues[0].problem


def test_members_of_a_cbc_panel_take_the_panels_time_and_draw():
    """FHIR example Bundle-ghp: CBC results carry no time; their panel Observation (hasMember) does."""
    member = observation(ANC, 0.9, id="r9")
    del member["effectiveDateTime"]
    panel = {
        "resourceType": "Observation",
        "id": "p2",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "effectiveDateTime": day(2).isoformat(),
        "hasMember": [{"reference": "Observation/r9"}],
    }
    [m] = record_of(panel, member).measurements
    assert (m.time, m.draw) == (day(2), "Observation/p2")


def test_a_coding_with_a_non_string_code_or_system_is_skipped_and_the_next_coding_still_read():
    odd = observation(WBC, 2.0)
    odd["code"]["coding"] = [
        {"system": "http://loinc.org", "code": {"value": WBC}},
        {"system": ["http://loinc.org"], "code": WBC},
        *odd["code"]["coding"],
    ]
    [m] = record_of(odd).measurements
    assert m.analyte is Analyte.WHITE_BLOOD_CELLS and m.value == 2.0


def test_times_are_remembered_but_a_long_text_where_a_time_belongs_is_not():
    """A worker keeps recent time texts; a request cannot make it keep megabytes of them."""
    kept = times._remembered.cache_info().currsize
    padded = "2015-02-07T13:28:17" + "7" * 1_000_000
    assert times.parse_datetime(padded) is None
    assert times._remembered.cache_info().currsize == kept
    instant = times.parse_datetime("2015-02-07T13:28:17.239123+02:00")
    assert instant is not None and instant.isoformat() == "2015-02-07T11:28:17.239123+00:00"
    assert times.parse_datetime("2015-02-07T13:28:17.239123+02:00") is instant, "the same text is read once"
