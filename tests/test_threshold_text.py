"""Card text follows the site's thresholds: every site-tunable value set to an unusual number shows up as
that number in the cards, so no sentence can contradict the rule that fired."""

from __future__ import annotations

import pytest

from cds_service.clinical.knowledge import thresholds
from cds_service.config import ConfigError, load_settings
from tests import fn_vignettes as fv
from tests.card_quality import _from_fn_vignette
from tests.conftest import assert_valid

UNUSUAL = {
    "default_lln_absolute_neutrophil_count": 1.7,
    "default_lln_platelets": 160,
    "duffy_null_lln_absolute_neutrophil_count": 1.13,
    "duffy_null_lln_white_blood_cells": 2.9,
    "red_cell_transfusion_hemoglobin": 7.5,
    "platelet_transfusion": 15,
    "persistent_cytopenia_days": 21,
    "stale_result_days": 3,
    "history_lookback_days": 45,
    "pregnancy_possible_from_years": 16,
    "pregnancy_possible_to_years": 45,
}
HOURS = 60


@pytest.fixture
def client(make_app):
    return make_app(thresholds=UNUSUAL, fever_lookback_hours=36).test_client()


def test_every_site_tunable_threshold_is_exercised_here():
    assert set(UNUSUAL) == set(thresholds())


def cards(client, *resources) -> list[dict]:
    response = client.post("/cds-services/cytopenia-review", json=_from_fn_vignette(fv.request(*resources)))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid("response", response.get_json())
    return response.get_json()["cards"]


def count(code: str, value: float, hours_before: float = 2) -> dict:
    unit = "g/dL" if code == "718-7" else "10*9/L"
    return fv.observation(code, value, unit, hours_before * HOURS)


ANC, WBC, HB, PLT = "751-8", "6690-2", "718-7", "777-3"
DUFFY_NULL = {**fv.condition("http://snomed.info/sct", "", ""), "code": {"text": "Duffy-null phenotype"}}


def test_default_lower_limits_follow_the_site(client):
    [neutropenia] = cards(client, count(ANC, 1.6), fv.temp(36.8, 30))
    assert "default 1.7 ×10⁹/L" in neutropenia["detail"]
    [thrombocytopenia] = cards(client, count(PLT, 155))
    assert "default 160 ×10⁹/L" in thrombocytopenia["detail"]


def test_duffy_null_limits_follow_the_site(client):
    [reading] = cards(client, count(ANC, 1.2), DUFFY_NULL)
    assert "lower limit 1.13 ×10⁹/L" in reading["detail"]
    [white] = cards(client, count(WBC, 2.95), DUFFY_NULL)
    assert "lower limit 2.9 ×10⁹/L" in white["detail"]


def test_transfusion_thresholds_follow_the_site(client):
    [anaemia] = cards(client, count(HB, 7.2))
    assert anaemia["summary"].endswith("consider red-cell transfusion")
    assert "Consider red-cell transfusion (Hb below 7.5 g/dL)" in [s["label"] for s in anaemia["suggestions"]]
    [thrombocytopenia] = cards(client, count(PLT, 12))
    assert "Consider platelet transfusion (below 15 ×10⁹/L)" in [s["label"] for s in thrombocytopenia["suggestions"]]


def test_persistence_staleness_and_look_back_follow_the_site(client):
    [persistent] = cards(client, count(ANC, 0.9, 24 * 25), count(ANC, 0.8, 2), fv.temp(36.8, 30))
    assert "persistent, over 21 days" in persistent["detail"]
    [stale] = cards(client, count(ANC, 0.9, 24 * 4))
    assert "counts older than 3 days may have changed" in stale["detail"]
    [history] = cards(client, count(ANC, 0.3, 24 * 50), fv.medication("2626", "clozapine 100 MG Oral Tablet"))
    assert history["summary"] == "No blood count in the last 45 days — order a CBC with differential"


def test_the_fever_look_back_follows_the_site(client):
    [neutropenia] = cards(client, count(ANC, 0.3))
    assert "No temperature in the last 36 h" in neutropenia["detail"]


def test_a_look_back_shorter_than_the_not_current_age_is_refused():
    with pytest.raises(ConfigError, match="history_lookback_days"):
        load_settings(thresholds={"history_lookback_days": 5, "stale_result_days": 7})
