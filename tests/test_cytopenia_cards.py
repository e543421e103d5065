"""Findings -> cards: the headline number, evidence, staleness, gaps and suggestions a clinician expects."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cards.markdown import escape
from cards.numbers import value_text
from cards.patient_view import patient_view_cards
from cds_service.clinical.cytopenia import assess
from cds_service.clinical.expected_counts import NOTHING_EXPECTED, CountsExpected
from fhir_mappings import Analyte
from tests.builders import ANC, HB, LYMPH, NEUT_PCT, PLT, WBC, condition, day, draw, observation, patient, record_of
from tests.conftest import assert_valid


def cards_for(*resources, as_of=None, patient_resource=None, expected=NOTHING_EXPECTED):
    as_of = as_of or day(1)
    record = record_of(*resources, patient_resource=patient_resource)
    cards = patient_view_cards(assess(record, as_of), "p1", "enc-1", expected=expected)
    documents = [c.to_json() for c in cards]
    assert_valid("response", {"cards": documents})
    return documents


def card(documents, prefix):
    return next(c for c in documents if c["summary"].startswith(prefix))


def labels(document):
    return [s["label"] for s in document.get("suggestions", ())]


def test_neutropenia_card_headline_grade_and_evidence():
    neutropenia = card(cards_for(observation(ANC, 0.9, id="anc-9")), "Neutropenia")
    assert neutropenia["summary"] == "Neutropenia: ANC 0.9 (CTCAE v5 grade 3, moderate) — repeat CBC and smear"
    assert neutropenia["indicator"] == "warning"
    assert "Observation/anc-9" in neutropenia["detail"] and "| 0.9 ×10⁹/L | 3 |" in neutropenia["detail"]
    assert "2026-11-01 08:00" in neutropenia["detail"]
    assert neutropenia["source"]["url"].startswith("https://")
    assert {link["label"] for link in neutropenia["links"]} == {"NCI CTCAE v5.0", "IDSA 2010 febrile neutropenia"}
    assert labels(neutropenia)[:2] == ["Repeat CBC with differential", "Peripheral blood smear review"]


def test_grade_2_neutropenia_is_info():
    assert card(cards_for(observation(ANC, 1.2)), "Neutropenia")["indicator"] == "info"


def test_derived_anc_card_shows_how_it_was_computed():
    neutropenia = card(cards_for(*draw((WBC, 2.0), (NEUT_PCT, 20))), "Neutropenia")
    assert "derived: WBC 2 × neutrophils 20% / 100" in neutropenia["detail"]
    assert "| WBC | 2.0 ×10⁹/L | 2 |" in neutropenia["detail"]  # leukopenia is a row, not a second card


def test_normal_counts_give_no_card():
    assert cards_for(*draw((WBC, 6.0), (ANC, 3.5), (HB, 14.0), (PLT, 250))) == []


def test_a_patient_who_simply_has_no_cbc_gets_no_card():
    assert cards_for() == []


def test_no_counts_where_counts_are_expected_give_the_data_gap_card_never_silence():
    [gap] = cards_for(expected=CountsExpected(drugs=("cyclophosphamide",)))
    assert gap["summary"] == "Cytopenia not assessed: no usable blood count — order a CBC with differential"
    assert "**not** a statement that the counts are normal" in gap["detail"] and "cyclophosphamide" in gap["detail"]
    assert [s["label"] for s in gap["suggestions"]] == ["CBC with differential"]


def test_a_count_older_than_the_look_back_is_history_never_a_warning():
    assert cards_for(observation(ANC, 0.3), as_of=day(91)) == []
    [gap] = cards_for(observation(ANC, 0.3), as_of=day(91), expected=CountsExpected(drugs=("clozapine",)))
    assert gap["indicator"] == "info"
    assert gap["summary"] == "No blood count in the last 90 days — order a CBC with differential"
    assert "Latest count 2026-11-01: older than the 90-day look-back, shown as history" in gap["detail"]


def test_a_count_within_the_look_back_but_older_than_a_week_is_shown_as_not_current():
    neutropenia = card(cards_for(observation(ANC, 0.3), as_of=day(90)), "Neutropenia")
    assert "result of 2026-11-01" in neutropenia["summary"]
    assert [s["label"] for s in neutropenia["suggestions"]] == ["Repeat CBC with differential"]


def test_unusable_results_alone_give_the_data_gap_card_naming_them():
    [gap] = cards_for(observation(WBC, 4.0, "K", id="w1"))
    assert gap["summary"].startswith("Cytopenia not assessed")
    assert "Observation/w1" in gap["detail"] and "not an accepted unit" in gap["detail"]


def test_a_preliminary_result_is_graded_and_labelled_preliminary():
    [card] = cards_for(observation(ANC, 0.3, status="preliminary"), *draw((WBC, 5.0), (HB, 14.0), (PLT, 250)))
    assert card["summary"].startswith("Neutropenia: ANC 0.3 (preliminary) (CTCAE v5 grade 4")
    assert "**preliminary**" in card["detail"]


def test_a_corrected_result_is_labelled_corrected():
    [card] = cards_for(observation(ANC, 0.8, status="amended"), *draw((WBC, 5.0), (HB, 14.0), (PLT, 250)))
    assert "ANC 0.8 (corrected)" in card["summary"]


def test_a_stale_result_is_said_in_summary_and_detail():
    neutropenia = card(cards_for(observation(ANC, 0.9), as_of=day(20)), "Neutropenia")
    assert neutropenia["summary"].endswith("result of 2026-11-01 — not current: repeat CBC")
    assert "**Not current:** this result is 20 days old; counts older than 7 days" in neutropenia["detail"]


def test_trend_nadir_and_persistence_on_the_card_with_haematology_referral():
    neutropenia = card(
        cards_for(
            observation(ANC, 0.9, on=0), observation(ANC, 0.4, on=10), observation(ANC, 0.6, on=30), as_of=day(30)
        ),
        "Neutropenia",
    )
    assert "3 results; nadir 0.4 ×10⁹/L on 2026-11-11" in neutropenia["detail"]
    assert "(persistent, over 28 days)" in neutropenia["detail"]
    assert "Referral to haematology" in labels(neutropenia)


def test_anaemia_card_suggests_work_up_and_transfusion_below_7():
    anaemia = card(cards_for(observation(HB, 6.9)), "Anaemia")
    assert anaemia["summary"] == "Anaemia: Hb 6.9 g/dL (CTCAE v5 grade 3, severe) — consider red-cell transfusion"
    assert "Anaemia work-up: reticulocytes, ferritin, vitamin B12, folate" in labels(anaemia)
    assert any("red-cell transfusion" in label for label in labels(anaemia))


def test_no_transfusion_suggestion_at_exactly_7():
    assert not any("transfusion" in label for label in labels(card(cards_for(observation(HB, 7.0)), "Anaemia")))


def test_platelet_transfusion_below_10_only_and_as_text_without_a_code():
    low = card(cards_for(observation(PLT, 9)), "Thrombocytopenia")
    transfusion = next(s for s in low["suggestions"] if "platelet transfusion" in s["label"])
    assert transfusion["actions"][0]["resource"]["code"] == {"text": "Platelet transfusion (consider)"}
    assert not any(
        "platelet transfusion" in label for label in labels(card(cards_for(observation(PLT, 10)), "Thrombocytopenia"))
    )


def test_pancytopenia_is_one_card_listing_its_lineages_as_rows_and_refers():
    [pancytopenia] = cards_for(*draw((ANC, 0.8), (WBC, 1.9), (LYMPH, 0.4), (HB, 9.0), (PLT, 60)))
    assert pancytopenia["summary"] == (
        "Pancytopenia: ANC 0.8, Hb 9.0 g/dL, platelets 60 — smear review and haematology referral"
    )
    assert pancytopenia["indicator"] == "warning"
    for row in ("| ANC | 0.8 ×10⁹/L |", "| Hb | 9.0 g/dL |", "| Platelets | 60 ×10⁹/L |", "| WBC | 1.9 ×10⁹/L |"):
        assert row in pancytopenia["detail"]
    assert "| Lymphocytes | 0.4 ×10⁹/L |" in pancytopenia["detail"]
    assert "Referral to haematology" in labels(pancytopenia)


def test_one_card_per_problem_and_each_order_offered_once():
    documents = cards_for(*draw((ANC, 0.9), (WBC, 2.5), (HB, 6.5)), *draw((PLT, 8), on=1), as_of=day(2))
    assert [d["summary"].split(":")[0] for d in documents] == ["Neutropenia", "Anaemia", "Thrombocytopenia"]
    offered = [label for d in documents for label in labels(d)]
    assert offered.count("Repeat CBC with differential") == 1
    assert offered.count("Peripheral blood smear review") == 1
    assert "Consider platelet transfusion (below 10 ×10⁹/L)" in labels(documents[2])


def test_duffy_null_anc_within_interval_is_said_and_suggests_no_work_up():
    documents = cards_for(observation(ANC, 1.3), condition("Duffy-null phenotype"))
    reading = card(documents, "ANC 1.3")
    assert (
        reading["summary"]
        == "ANC 1.3 ×10⁹/L: within the Duffy-null reference interval (CTCAE v5 grade 2 for toxicity reporting) "
        "— no work-up for this count alone"
    )
    assert reading["indicator"] == "info" and "suggestions" not in reading


def test_every_card_has_uuid_short_summary_and_override_reasons():
    documents = cards_for(*draw((ANC, 0.05), (WBC, 0.5), (HB, 6.0)), *draw((PLT, 5), on=1), as_of=day(3))
    assert len(documents) == 3
    for document in documents:
        assert len(document["summary"]) <= 139 and document["uuid"]
        assert all(r["display"] for r in document["overrideReasons"])
        assert document.get("selectionBehavior", "any") == "any"
        assert all(s["uuid"] for s in document.get("suggestions", ()))
        assert "<" not in document["detail"]


def test_markdown_escape_neutralises_ehr_text():
    """No tag reaches an EHR that renders HTML, and Markdown syntax from the EHR is inert."""
    assert (
        escape("<script>*x*</script> | [a](b) & c") == "&lt;script&gt;\\*x\\*&lt;/script&gt; \\| \\[a\\]\\(b\\) &amp; c"
    )


MARKDOWN_SPECIAL = "\\`*_{}[]()#+!|~"
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from([*MARKDOWN_SPECIAL, *ENTITIES, "a", "Z", ";", " ", "\n", "\u00e9"]), max_size=40))
def test_markdown_escape_escapes_each_character_of_ehr_text_once(text):
    """Every Markdown character is backslash-escaped and every angle bracket and ampersand becomes its
    entity, each exactly once, whatever mix of them the EHR sent (an escape is never escaped again)."""
    expected = "".join(ENTITIES.get(c) or ("\\" + c if c in MARKDOWN_SPECIAL else c) for c in " ".join(text.split()))
    assert escape(text) == expected


def test_female_patient_hb_card_names_the_who_population():
    anaemia = card(cards_for(observation(HB, 11.5), patient_resource=patient("female")), "Anaemia")
    assert "non-pregnant women 15 years and over" in anaemia["detail"]


def test_numbers_in_clinical_form_never_round_across_the_limit_they_were_judged_by():
    assert value_text(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 1.0) == "1.0"
    assert value_text(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 0.3) == "0.3"
    assert value_text(Analyte.PLATELETS, 42.4) == "42"
    assert value_text(Analyte.HEMOGLOBIN, 7.94) == "7.9"
    assert value_text(Analyte.ABSOLUTE_NEUTROPHIL_COUNT, 0.095, (0.1,)) == "0.095"
    assert value_text(Analyte.PLATELETS, 9.6, (10,)) == "9.6"
    assert value_text(Analyte.HEMOGLOBIN, 6.96, (7.0,)) == "6.96"


def test_anc_0_095_is_not_shown_as_0_1_on_a_neutropenia_card():
    neutropenia = card(cards_for(observation(ANC, 0.095)), "Neutropenia")
    assert neutropenia["summary"].startswith("Neutropenia: ANC 0.095 (CTCAE v5 grade 4, profound)")
