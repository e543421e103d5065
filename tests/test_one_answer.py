"""cytopenia-review gives the whole chart-opening answer: one card per clinical problem, each order once."""

from __future__ import annotations

import pytest

from tests import fn_vignettes as fv
from tests.card_quality import _from_fn_vignette, _orders, worst_patient
from tests.conftest import assert_valid

CLOZAPINE = fv.medication("2626", "clozapine 100 MG Oral Tablet")
IMATINIB = fv.medication("282388", "imatinib 400 MG Oral Tablet")
CYCLOPHOSPHAMIDE = fv.medication("3002", "cyclophosphamide 500 MG Injection")


def count(code: str, value: float, hours_before: float = 2) -> dict:
    return fv.observation(code, value, "g/dL" if code == "718-7" else "10*9/L", hours_before * 60)


ANC, WBC, HB, PLT = "751-8", "6690-2", "718-7", "777-3"


def review(client, *resources) -> list[dict]:
    response = client.post("/cds-services/cytopenia-review", json=_from_fn_vignette(fv.request(*resources)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid("response", response.get_json())
    return response.get_json()["cards"]


def titles(cards: list[dict]) -> list[str]:
    return [c["summary"].split(":")[0] for c in cards]


def test_the_worst_patient_gets_three_cards_each_order_once(client):
    response = client.post("/cds-services/cytopenia-review", json=worst_patient())
    cards = response.get_json()["cards"]
    assert titles(cards) == ["Febrile neutropenia", "Clozapine", "Pancytopenia"]
    assert [c["indicator"] for c in cards] == ["critical", "critical", "warning"]
    offered = [order for card in cards for order in _orders(card)]
    assert len(offered) == len(set(offered))
    assert [s["label"] for s in cards[1]["suggestions"]] == ["Haematology consult"], "drug card before lineage"
    pancytopenia = cards[2]["detail"]
    assert "| WBC | 1.1 ×10⁹/L |" in pancytopenia and "| Lymphocytes | 0.4 ×10⁹/L |" in pancytopenia


def test_febrile_neutropenia_subsumes_the_neutropenia_card(client):
    cards = review(client, fv.temp(38.6, 30), count(ANC, 0.3), count(WBC, 1.2), count(HB, 13.5), count(PLT, 210))
    assert titles(cards) == ["Febrile neutropenia"]


@pytest.mark.parametrize(
    ("drug", "counts", "summary", "indicator"),
    [
        (CLOZAPINE, [count(ANC, 0.7)], "Clozapine: ANC 0.7, moderate neutropenia — interrupt clozapine", "warning"),
        (IMATINIB, [count(ANC, 0.8)], "Imatinib: ANC 0.8, ELN 2016 stop threshold", "warning"),
        (IMATINIB, [count(ANC, 2.0), count(PLT, 40)], "Imatinib: platelets 40, ELN 2016 stop threshold", "warning"),
    ],
)
def test_a_drug_in_a_hold_band_is_its_own_card(client, drug, counts, summary, indicator):
    cards = review(client, drug, fv.temp(36.9, 30), *counts)
    hold = next(c for c in cards if c["summary"].split(":")[0] in ("Clozapine", "Imatinib"))
    assert hold["summary"].startswith(summary) and hold["indicator"] == indicator
    assert hold["links"][0]["url"].startswith("https://")
    band = summary.split(", ")[-1].split(" — ")[0]
    assert f"**{band[0].upper()}{band[1:]}" in hold["detail"], "the band as its row writes it (ELN, not Eln)"


def test_clozapine_outside_a_hold_band_gets_no_drug_card(client):
    assert titles(review(client, CLOZAPINE, count(ANC, 1.2), fv.temp(36.9, 30))) == ["Neutropenia"]


def test_a_drug_that_needs_counts_without_a_recent_count_gets_the_data_gap_card(client):
    [gap] = review(client, CLOZAPINE, count(ANC, 0.3, 24 * 120))
    assert gap["summary"] == "No blood count in the last 90 days — order a CBC with differential"
    assert gap["indicator"] == "info" and "clozapine" in gap["detail"]


def test_fever_without_a_current_anc_warns_only_where_neutropenia_is_plausible(client):
    assert titles(review(client, fv.temp(38.9, 30))) == ["Cytopenia not assessed"]
    at_risk = review(client, fv.temp(38.9, 30), CYCLOPHOSPHAMIDE)
    assert titles(at_risk) == ["Fever 38.9 °C, no current ANC"]
    assert at_risk[0]["indicator"] == "warning"


def test_no_cbc_and_nothing_calling_for_one_is_no_card(client):
    assert review(client, fv.temp(36.9, 30)) == []


def test_a_projected_fall_is_said_in_the_summary_and_a_temperature_is_shown_as_the_rule_compared_it(client):
    [card] = review(client, fv.temp(38.4, 30), count(ANC, 2.0, 50), count(ANC, 1.6, 26), count(ANC, 1.1, 2))
    assert card["summary"].startswith("Febrile neutropenia: ANC 1.1 and falling, 38.4 °C")
    [card] = review(client, fv.temp(38.295, 30), count(ANC, 0.3))
    assert card["summary"].startswith("Febrile neutropenia: ANC 0.3, 38.3 °C"), "38.295 is compared as 38.30"


def test_a_hold_band_on_a_count_that_is_not_current_asks_for_a_new_count_as_a_warning(client):
    [hold] = [c for c in review(client, CLOZAPINE, count(ANC, 0.3, 24 * 20)) if c["summary"].startswith("Clozapine")]
    assert hold["indicator"] == "warning"
    assert "(not current), severe neutropenia — repeat the count now" in hold["summary"]


def test_what_could_not_be_assessed_is_said_once_on_the_first_card(client):
    # No ANC or differential: a WBC of grade 4 (warning) and an Hb of grade 2 (info) get a card each.
    cards = review(client, fv.temp(36.9, 30), count(WBC, 0.6), count(HB, 9.5), count(PLT, 210))
    assert titles(cards) == ["Leukopenia", "Anaemia"]
    said = [card["detail"].count("neutropenia cannot be assessed") for card in cards]
    assert said == [1, 0], "the data gap on the card read first, not repeated on every card"


def test_the_data_gap_goes_to_the_card_read_first_whichever_lineage_it_is(client):
    # An Hb of grade 3 (warning) is read before a WBC of grade 2 (info).
    cards = review(client, fv.temp(36.9, 30), count(WBC, 2.5), count(HB, 7.5), count(PLT, 210))
    assert titles(cards) == ["Anaemia", "Leukopenia"]
    assert [card["detail"].count("neutropenia cannot be assessed") for card in cards] == [1, 0]
