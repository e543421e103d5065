"""Card text reads its counts and citations from the knowledge rows: a table changed here changes the card.

Each test loads a modified copy of one shipped table (as a site editing the CSV would) and checks that
the card says what the row now says, so a number or a guideline name written back into the code fails
here. A malformed new field stops the start with the file and the row named.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest

from cds_service import knowledge_tables
from cds_service.clinical import knowledge
from cds_service.knowledge_tables import KnowledgeError, load_all, read_table
from tests import fn_vignettes as fv
from tests import test_order_safety_http as orders
from tests.conftest import AS_OF
from tests.test_clinical_safety import _cards, _hb, _lab, _review

Edit = Callable[[list[dict[str, str]]], None]
CITED = "Site protocol 2026"  # not a real guideline: only the row can have put it on the card


class _Data:
    """A package's `data/` folder with some tables replaced by edited copies."""

    def __init__(self, real, replaced: dict[tuple[str, ...], Path]):
        self.real, self.replaced = real, replaced

    def joinpath(self, *parts: str):
        return self.replaced.get(parts) or self.real.joinpath(*parts)


def _clear_caches() -> None:
    read_table.cache_clear()
    knowledge._named_values.cache_clear()
    for loader in knowledge_tables._LOADERS:
        loader.cache_clear()  # knowledge_loader keeps each loader as a functools.cache


@pytest.fixture
def edited(tmp_path, monkeypatch) -> Iterator[Callable[[str, str, Edit], None]]:
    """edited(package, table, edit): from now on the service reads the table as `edit` left its rows."""
    replaced: dict[str, dict[tuple[str, ...], Path]] = {}

    def files(package: str):
        return _Data(resources.files(package), replaced.get(package, {}))

    def edit_table(package: str, name: str, edit: Edit) -> None:
        text = resources.files(package).joinpath("data", name).read_text(encoding="utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        edit(rows)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=reader.fieldnames or [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path = tmp_path / f"{package}-{name}"
        path.write_text(out.getvalue(), encoding="utf-8")
        replaced.setdefault(package, {})[("data", name)] = path
        _clear_caches()

    monkeypatch.setattr(knowledge_tables, "resources", SimpleNamespace(files=files))
    yield edit_table
    monkeypatch.undo()
    _clear_caches()


def _row(rows: list[dict[str, str]], **match: str) -> dict[str, str]:
    [row] = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return row


def cite(**match: str) -> Edit:
    """Give the matching row(s) the citation CITED (named in its source, as the start-up check asks)."""

    def edit(rows: list[dict[str, str]]) -> None:
        for row in [r for r in rows if all(r[k] == v for k, v in match.items())] or [_row(rows, **match)]:
            row["cited_as"], row["source"] = CITED, f"{CITED} (test row); {row['source']}"

    return edit


def _fn_card(client, *resources: dict) -> dict:
    return next(c for c in _cards(client, *resources) if c["indicator"] == "critical")


def _three_sets(rows: list[dict[str, str]]) -> None:
    row = _row(rows, name="blood_culture_sets")
    row["value"] = "3"
    row["sites"] += ";a third peripheral site"


# --- blood cultures: the count printed and the orders drafted come from first_hour.csv ---------------------


def test_the_fn_card_drafts_and_says_as_many_blood_culture_sets_as_the_row_asks(edited, make_app):
    edited("cds_service.clinical", "first_hour.csv", _three_sets)
    card = _fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR)
    assert "with 3 blood-culture sets and a daily CBC" in card["detail"]
    for suggestion in card["suggestions"]:
        assert "3 blood cultures" in suggestion["label"]
        cultures = [a for a in suggestion["actions"] if "blood culture set" in a["description"]]
        assert [a["description"] for a in cultures] == [f"Draft order: blood culture set {i} of 3" for i in (1, 2, 3)]
        assert cultures[2]["resource"]["note"][0]["text"] == "Set 3 of 3: a third peripheral site."


def test_the_first_hour_checklist_counts_the_sets_the_row_asks_for(edited):
    edited("cds_service.clinical", "first_hour.csv", _three_sets)
    from cds_service.clinical.first_hour import blood_culture_sets

    assert blood_culture_sets().count == 3


@pytest.mark.parametrize(
    ("value", "sites", "problem"),
    [
        ("3", "peripheral;central", "3 sets but 2 sites: give one site per set"),
        ("1.5", "peripheral", "value '1.5' is not a whole number of sets"),
        ("0", "", "value '0' is not a whole number of sets (at least 1)"),
        ("", "peripheral", "value '' is not a whole number of sets"),
    ],
)
def test_a_blood_culture_row_whose_sites_do_not_match_its_count_stops_the_start(edited, value, sites, problem):
    def edit(rows: list[dict[str, str]]) -> None:
        row = _row(rows, name="blood_culture_sets")
        row["value"], row["sites"] = value, sites

    edited("cds_service.clinical", "first_hour.csv", edit)
    with pytest.raises(KnowledgeError, match="cds_service/clinical/data/first_hour.csv, line 2") as raised:
        load_all()
    assert problem in str(raised.value)


# --- citations: the guideline a card names is the row's cited_as ------------------------------------------


def _order_text(client, draft: dict, counts: list[dict], meds: list[dict]) -> str:
    [card] = orders.cards(client, orders.request([draft], counts, meds))
    return card["summary"] + "\n" + orders.plain(card)


LOW = [orders.anc(0.3), orders.platelets(40)]
ON_LEVOFLOXACIN = [orders.medication("levo-active", "82122", status="active", authored_days_ago=5)]
# rule row cited -> (the draft, its counts, the active medications, what the card then says)
ORDER_CITATIONS = {
    "eln-tki": (
        ("tki_cytopenia.csv", {"ingredient": "imatinib"}),
        (orders.medication("d-imat", "282388"), LOW, []),
        f"{CITED} says stop until counts recover",
    ),
    "andersohn": (
        ("order_rules.csv", {"rule": "agranulocytosis_risk", "name": "severe_anc_below"}),
        (orders.medication("d-methi", "6835"), LOW, []),
        f"most often reported to cause agranulocytosis ({CITED})",
    ),
    "deferiprone-boxed-warning": (
        ("order_rules.csv", {"rule": "deferiprone", "name": "interrupt_anc_below"}),
        (orders.medication("d-defer", text="deferiprone 500 mg tablet"), LOW, []),
        f"×10⁹/L ({CITED})",
    ),
    "vancomycin-idsa": (
        ("order_rules.csv", {"rule": "vancomycin", "name": "indication_categories"}),
        (orders.medication("d-vanc", "11124"), LOW, []),
        f"initial febrile-neutropenia regimen ({CITED})",
    ),
    "quinolone-asco-idsa": (
        ("order_rules.csv", {"rule": "fluoroquinolone_prophylaxis", "name": "fn_context_categories"}),
        (orders.medication("d-levo", "82122"), LOW, ON_LEVOFLOXACIN),
        f"{CITED}: the oral fluoroquinolone regimen",
    ),
}


@pytest.mark.parametrize(("row", "call", "says"), ORDER_CITATIONS.values(), ids=ORDER_CITATIONS.keys())
def test_an_order_card_names_the_citation_of_its_rule_row(edited, make_app, row, call, says):
    table, match = row
    edited("cds_service.clinical", table, cite(**match))
    assert says in _order_text(make_app().test_client(), *call)


def test_the_bcr_abl_chart_card_names_the_tki_rows_citation(edited, make_app):
    edited("cds_service.clinical", "tki_cytopenia.csv", cite(ingredient="imatinib"))
    counts = [_lab("751-8", 0.3, "10*9/L", 1, "anc"), _lab("777-3", 40, "10*9/L", 1, "plt")]
    imatinib = orders.medication("imat-active", "282388", status="active", authored_days_ago=30)
    summaries = [c["summary"] for c in _review(make_app().test_client(), counts, medications=[imatinib]).values()]
    said = f"Imatinib: ANC 0.3, platelets 40, {CITED} stop threshold (chronic phase, 400 mg) — stop imatinib"
    assert said in summaries


ROWCITES = ("Rowcite-A 2026", "Rowcite-B 2026", "Rowcite-C 2026", "Rowcite-D 2026")


def cite_each(**citations: str) -> Edit:
    """Give each row named (by `name`) its own citation, named in its source."""

    def edit(rows: list[dict[str, str]]) -> None:
        for name, cited in citations.items():
            row = _row(rows, name=name)
            row["cited_as"], row["source"] = cited, f"{cited}; {row['source']}"

    return edit


def test_the_fn_card_names_each_definition_and_the_time_goal_by_its_row(edited, make_app):
    edit = cite_each(
        idsa_neutropenia_anc="Rowcite-A 2026",
        ctcae_fn_anc="Rowcite-B 2026",
        antibiotics_within_minutes="Rowcite-C 2026",
        idsa_fever_single="Rowcite-D 2026",
    )
    edited("cds_service.clinical", "febrile_neutropenia.csv", edit)
    detail = orders.plain(_fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR))
    assert "Rowcite-A 2026 (ANC <0.5): **met**; Rowcite-B 2026 (ANC <1.0): **met**." in detail
    assert "of triage** (Rowcite-C 2026)" in detail
    assert "(Rowcite-D 2026 fever: single reading ≥38.3 °C)" in detail


def test_the_fn_card_cites_the_empirical_list_g_csf_and_aminoglycoside_rows(edited, make_app):
    edited("cds_service.clinical", "empirical_regimens.csv", cite(kind="empirical", idsa_2010="yes"))
    edited("cds_service.clinical", "gcsf_criteria.csv", cite())
    edited("cards", "medication_orders.csv", cite(order="aminoglycoside_unspecified"))
    client = make_app().test_client()
    shock = (fv.temp(38.9, 30), fv.anc(0.05, 2), fv.bp(80), fv.SEPTIC_SHOCK, fv.weight(80), fv.SOLID_TUMOUR)
    fn, considerations = _cards(client, *shock)
    assert f"an anti-pseudomonal β-lactam ({CITED}) with 2 blood-culture sets" in orders.plain(fn)
    assert f"Consider G-CSF ({CITED} high-risk features)" in orders.plain(considerations)
    assert f"Consider adding an aminoglycoside ({CITED}: may be added for complications)" in [
        s["label"] for s in considerations["suggestions"]
    ]
    quiet = _fn_card(client, fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR, fv.weight(70))
    assert f"Ceftazidime 2 g IV every 8 hours, 2 blood cultures, daily CBC (not in {CITED} list)" in [
        s["label"] for s in quiet["suggestions"]
    ]


def test_anaemia_and_duffy_null_cards_name_their_rows_citations(edited, make_app):
    edited("cds_service.clinical", "who_anaemia.csv", cite())
    edited("cds_service.clinical", "thresholds.csv", cite(name="duffy_null_lln_absolute_neutrophil_count"))
    client = make_app().test_client()
    anaemia = _review(client, [_hb(9.0)])["Anaemia"]
    assert f"{CITED} cut-off for non-pregnant women 15 years and over: 12 g/dL" in orders.plain(anaemia)
    duffy_null = orders.condition("Duffy-null phenotype")
    [neutropenia] = _review(client, [_lab("751-8", 1.3, "10*9/L", 1, "anc")], conditions=[duffy_null]).values()
    assert f"(lower limit 1.21 ×10⁹/L, {CITED})" in orders.plain(neutropenia)


def test_the_infant_haemoglobin_card_reads_the_youngest_who_age_from_the_table(edited, make_app):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, population="children 6-23 months")["min_age_months"] = "9"

    edited("cds_service.clinical", "who_anaemia.csv", edit)
    [gap] = _review(make_app().test_client(), [_hb(11.0)], birth_date="2026-09-01").values()
    assert gap["summary"] == "Haemoglobin not graded: no WHO 2024 cut-off below 9 months and no lab reference range"


def test_a_grade_is_named_by_the_citation_of_its_ctcae_row(edited, make_app):
    edited("cds_service.clinical", "ctcae_grades.csv", cite())
    card = _review(make_app().test_client(), [_hb(9.0)])["Anaemia"]
    assert card["summary"].startswith(f"Anaemia: Hb 9.0 g/dL ({CITED} grade 2, moderate)")


def test_the_who_notes_on_pregnancy_and_infants_name_the_rows_citation(edited, make_app):
    edited("cds_service.clinical", "who_anaemia.csv", cite())
    client = make_app().test_client()
    unknown = _review(client, [_hb(11.5)], birth_date="1996-01-01")["Anaemia"]
    assert f"Pregnancy status not known: the non-pregnant {CITED} cut-off is used." in unknown["detail"]
    pregnant = fv.condition(fv.ICD, "Z33.1", "Pregnant state, incidental")
    trimester_unknown = _review(client, [_hb(10.8)], [pregnant], birth_date="1996-01-01")["Anaemia"]
    assert f"the {CITED} first/third-trimester cut-off 11 g/dL is used" in trimester_unknown["detail"]
    second = fv.condition(fv.ICD, "Z34.02", "Supervision of normal first pregnancy, second trimester")
    second_trimester = _review(client, [_hb(10.0)], [second], birth_date="1996-01-01")["Anaemia"]
    assert f"the {CITED} cut-off for that trimester is used." in second_trimester["detail"]
    [gap] = _review(client, [_hb(11.0)], birth_date="2026-09-01").values()
    assert gap["summary"] == f"Haemoglobin not graded: no {CITED} cut-off below 6 months and no lab reference range"
    assert f"haemoglobin not graded: no {CITED} cut-off below 6 months" in gap["detail"]
    infant = _review(client, [_hb(9.0, low=10.0)], birth_date="2026-09-01")["Anaemia"]
    assert f"No {CITED} cut-off below 6 months: graded only against the lab's range." in infant["detail"]


def _boundary_detail(client, *resources: dict) -> str:
    [card] = _cards(client, *resources)
    assert "missed at the boundary" in card["summary"]
    return card["detail"]


def test_the_boundary_miss_lines_name_each_definition_by_its_row(edited, make_app):
    rules = ("idsa_fever_single", "idsa_neutropenia_anc", "ctcae_fever_single", "ctcae_fn_anc")
    edited("cds_service.clinical", "febrile_neutropenia.csv", cite_each(**dict(zip(rules, ROWCITES, strict=True))))
    client = make_app().test_client()
    no_fever = _boundary_detail(client, fv.temp(38.0, 30), fv.anc(0.9, 2))
    assert "Not met: Rowcite-A 2026 fever: highest reading 38.0 °C, 0.3 °C under 38.3 °C" in no_fever
    assert "Not met: Rowcite-C 2026 fever: highest reading 38.0 °C is not &gt;38.3 °C" in no_fever
    at_cut_off = _boundary_detail(client, fv.temp(38.3, 30), fv.anc(0.5, 2))
    assert "Not met: Rowcite-B 2026 neutropenia: ANC 0.5 ×10⁹/L is exactly at the &lt;0.5 cut-off" in at_cut_off
    falling = _boundary_detail(client, fv.temp(38.5, 30), fv.anc(1.3, 40), fv.anc(1.1, 2))
    assert "Not met: Rowcite-D 2026 neutropenia: ANC 1.1 ×10⁹/L is not &lt;1" in falling


def test_the_vre_line_names_the_vancomycin_rows_citation(edited, make_app):
    edited("cds_service.clinical", "order_rules.csv", cite(rule="vancomycin", name="indication_categories"))
    vre = fv.condition(fv.ICD, "Z16.21", "Resistance to vancomycin")
    detail = orders.plain(_fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR, vre))
    assert f"{CITED} adds a gram-positive agent for VRE colonisation" in detail


def test_the_mascc_burden_item_prints_the_points_of_its_rows(edited):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, item="burden_moderate")["points"] = "2"

    edited("cds_service.clinical", "mascc.csv", edit)
    from cds_service.clinical.risk_scores import MasccInputs, mascc

    inputs = MasccInputs(50, 120, "systolic 120", False, True, False, False, True, "outpatient")
    assert mascc(inputs).items[0].label == "Burden of illness (none/mild 5, moderate 2, severe 0)"


# --- the clozapine REMS note, the daily CBC and the held-TKI worklist row are rows too ----------------------


def test_the_clozapine_card_prints_the_rems_note_of_its_row(edited, make_app):
    draft, counts, meds = orders.clozapine_draft(), [orders.anc(1.2)], [orders.on_clozapine()]
    shipped = _order_text(make_app().test_client(), draft, counts, meds)
    assert "The clozapine REMS ended in 2025; the label's ANC monitoring still applies." in shipped

    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, note="rems_ended")["text"] = "Site note: the REMS ended (row text)."

    edited("cds_service.clinical", "clozapine_notes.csv", edit)
    text = _order_text(make_app().test_client(), draft, counts, meds)
    assert "Site note: the REMS ended (row text)." in text
    assert "2025" not in text


def test_the_daily_cbc_says_and_drafts_the_duration_of_its_row(edited, make_app):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, name="daily_cbc")["duration"] = "for 5 days (site protocol)"

    edited("cds_service.clinical", "first_hour.csv", edit)
    card = _fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR)
    assert "with 2 blood-culture sets and a daily CBC for 5 days (site protocol). Adjust doses" in card["detail"]
    for suggestion in card["suggestions"]:
        [cbc] = [a for a in suggestion["actions"] if a["description"] == "Draft order: daily CBC with differential"]
        assert cbc["resource"]["note"] == [{"text": "Daily for 5 days (site protocol)."}]
        assert cbc["resource"]["code"]["text"] == "CBC with differential", "the order names the test, not a repeat"
        assert cbc["resource"]["occurrenceTiming"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}


def test_the_daily_cbc_waits_for_the_recovery_the_idsa_neutropenia_row_names(edited, make_app):
    shipped = _fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR)
    assert "a daily CBC until ANC ≥0.5 ×10⁹/L and afebrile." in shipped["detail"]

    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, name="idsa_neutropenia_anc")["value"] = "0.4"

    edited("cds_service.clinical", "febrile_neutropenia.csv", edit)
    card = _fn_card(make_app().test_client(), fv.temp(38.9, 30), fv.anc(0.2, 2), fv.SOLID_TUMOUR)
    assert "a daily CBC until ANC ≥0.4 ×10⁹/L and afebrile." in card["detail"]


def test_a_daily_cbc_duration_naming_no_threshold_row_stops_the_start(edited):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, name="daily_cbc")["duration"] = "until ANC ≥{idsa_recovery_anc} ×10⁹/L"

    edited("cds_service.clinical", "first_hour.csv", edit)
    with pytest.raises(KnowledgeError, match="first_hour.csv, line 4: duration names 'idsa_recovery_anc', not a"):
        load_all()


def test_the_held_tki_worklist_row_names_the_tki_rows_citation(edited):
    from cds_service.screening.evaluate import screen_patient

    edited("cds_service.clinical", "tki_cytopenia.csv", cite(ingredient="imatinib"))
    held = orders.medication("imat-held", "282388", status="on-hold", authored_days_ago=10)
    [row] = [r for r in screen_patient(orders.PATIENT_ID, [held], AS_OF) if r.finding == "tki_held_not_restarted"]
    assert row.suggested_action == (
        f"Review whether to restart imatinib ({CITED}: Stop until ANC ≥1.5 and platelets ≥75 ×10⁹/L, then resume "
        "the starting dose; on recurrence repeat, then resume at 300 mg.)"
    )


# --- start-up checks of the new field ----------------------------------------------------------------------


def test_a_citation_its_source_does_not_name_stops_the_start(edited):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, ingredient="nilotinib")["cited_as"] = "ELN 2020"

    edited("cds_service.clinical", "tki_cytopenia.csv", edit)
    with pytest.raises(KnowledgeError) as raised:
        load_all()
    assert str(raised.value) == (
        "cds_service/clinical/data/tki_cytopenia.csv, line 3: cited_as 'ELN 2020' is not in the row's source "
        "(no '2020')"
    )


@pytest.mark.parametrize(
    ("package", "table", "match", "column", "line"),
    [
        ("cds_service.clinical", "tki_cytopenia.csv", {"ingredient": "dasatinib"}, "cited_as", 4),
        (
            "cds_service.clinical",
            "order_rules.csv",
            {"rule": "deferiprone", "name": "interrupt_anc_below"},
            "cited_as",
            4,
        ),
        ("cds_service.clinical", "febrile_neutropenia.csv", {"name": "ctcae_fn_anc"}, "cited_as", 11),
        ("cds_service.clinical", "gcsf_criteria.csv", {"criterion": "afebrile_not_routine"}, "cited_as", 8),
        ("cds_service.clinical", "thresholds.csv", {"name": "duffy_null_lln_absolute_neutrophil_count"}, "cited_as", 4),
        ("cds_service.clinical", "who_anaemia.csv", {"population": "men 15 years and over"}, "cited_as", 7),
        ("cards", "medication_orders.csv", {"order": "aminoglycoside_unspecified"}, "cited_as", 16),
        (
            "cds_service.clinical",
            "ctcae_grades.csv",
            {"analyte": "absolute_neutrophil_count", "grade": "3"},
            "cited_as",
            3,
        ),
        ("cds_service.clinical", "clozapine_notes.csv", {"note": "rems_ended"}, "text", 2),
        ("cds_service.clinical", "first_hour.csv", {"name": "daily_cbc"}, "duration", 4),
    ],
)
def test_a_missing_citation_or_text_a_card_prints_stops_the_start_naming_the_row(
    edited, package, table, match, column, line
):
    def edit(rows: list[dict[str, str]]) -> None:
        _row(rows, **match)[column] = ""

    edited(package, table, edit)
    with pytest.raises(KnowledgeError) as raised:
        load_all()
    assert f"{package.replace('.', '/')}/data/{table}, line {line}" in str(raised.value)
    assert f"{column} is empty: a card prints it from this row" in str(raised.value)


def test_a_clozapine_note_without_its_row_stops_the_start(edited):
    edited("cds_service.clinical", "clozapine_notes.csv", lambda rows: rows.append({**rows[0], "note": "other"}))
    load_all()
    edited("cds_service.clinical", "clozapine_notes.csv", lambda rows: rows.__setitem__(0, {**rows[0], "note": "x"}))
    with pytest.raises(KnowledgeError, match=r"clozapine_notes.csv: no row for \['rems_ended'\]"):
        load_all()


def test_a_cbc_row_that_is_not_daily_stops_the_start(edited):
    edited("cds_service.clinical", "first_hour.csv", lambda rows: _row(rows, name="daily_cbc").update(value="2"))
    with pytest.raises(
        KnowledgeError, match="^cds_service/clinical/data/first_hour.csv, line 4: every '2' d is not daily"
    ):
        load_all()


def test_empirical_regimens_citing_different_lists_stop_the_start(edited):
    def edit(rows: list[dict[str, str]]) -> None:
        row = _row(rows, regimen="meropenem")
        row["cited_as"], row["source"] = CITED, f"{CITED}; {row['source']}"

    edited("cds_service.clinical", "empirical_regimens.csv", edit)
    with pytest.raises(KnowledgeError, match=r"empirical_regimens.csv: the listed empirical regimens cite"):
        load_all()
