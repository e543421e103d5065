"""The card-quality report runs in `make test`: any broken limit over the corpus and the vignettes fails here."""

from __future__ import annotations

import pytest

from cards.model import DETAIL_MAX
from tests import card_quality

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def report() -> card_quality.Report:
    return card_quality.run()


def test_no_limit_is_broken_over_the_corpus_the_examples_and_the_vignettes(report):
    assert report.problems == [], card_quality.render(report)


def test_the_worst_patient_gets_at_most_three_cards_and_no_order_twice(report):
    cards = report.worst["cytopenia-review"]
    assert [c["indicator"] for c in cards] == ["critical", "critical", "warning"]
    assert [c["summary"].split(":")[0] for c in cards] == ["Febrile neutropenia", "Clozapine", "Pancytopenia"]
    offered = [order for card in cards for order in card_quality._orders(card)]
    assert len(offered) == len(set(offered))


def test_a_card_over_its_limit_or_with_an_internal_reference_is_reported():
    figures = card_quality.ServiceFigures()
    too_long = {"summary": "Neutropenia", "indicator": "warning", "detail": "x" * (DETAIL_MAX["warning"] + 1)}
    internal = {"summary": "Clozapine", "indicator": "info", "detail": "Rule source: clinical-knowledge §7.1, S15"}
    repeated = {
        "summary": "Anaemia",
        "indicator": "info",
        "suggestions": [{"actions": [{"resource": {"code": {"text": "Repeat CBC with differential"}}}]}],
    }
    card_quality.check_cards("broken", [too_long, internal, repeated, repeated], figures, limit_cards=True)
    assert any("warning detail 701" in p for p in figures.over_limit)
    assert {p.split(" ")[1] for p in figures.forbidden} >= {"section", "knowledge", "source"}
    assert figures.repeated == ["broken: Repeat CBC with differential on 2 cards"]
    assert figures.too_many == ["broken: 4 cards"]


def test_the_report_prints_the_figures_per_service(report):
    text = card_quality.render(report)
    assert "| cytopenia-review |" in text and "| febrile-neutropenia |" in text
    assert "Limits broken: 0" in text


def test_card_pictures_render_details_as_commonmark_with_gfm_tables(report):
    from tests.card_pictures import page

    rendered = page("worst patient", report.worst["cytopenia-review"])
    assert rendered.count("<table>") == 1 and "<th>CTCAE grade</th>" in rendered
    assert "<script" not in rendered and rendered.count('class="card"') == 3
