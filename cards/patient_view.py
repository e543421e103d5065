"""The whole patient-view answer: one card per clinical problem, each order offered once.

Problems and the cards that own them:
- febrile neutropenia owns the ANC: its card replaces the white-cell card and carries the first-hour
  orders (a pancytopenia card still lists the white cells among its rows);
- a drug in a hold band (clozapine, a BCR-ABL TKI) is its own problem and card;
- pancytopenia lists its lineages as rows and replaces the anaemia, thrombocytopenia and white-cell
  cards; otherwise the white cells are one problem (neutropenia, else leukopenia, with leukopenia and
  lymphopenia as rows), anaemia and thrombocytopenia one each;
- counts older than the look-back are history: no card of their own;
- the data-gap card only when counts were expected and could not be used;
- what the assessment could not assess or use is said once, on the first lineage card in priority
  order, not repeated word for word on every lineage card.

Then `one_answer` offers every order once, on the card with the highest indicator (a drug-safety card
before a lineage card).
"""

from __future__ import annotations

from dataclasses import replace

from cards.cytopenia import data_gap_card, finding_card, gap_lines, indicator
from cards.drug_safety import drug_safety_card
from cards.febrile_neutropenia import boundary_card, considerations_card, fever_watch, fever_without_anc_card, fn_card
from cards.model import Card
from cds_service.clinical.context import FindingContext
from cds_service.clinical.drug_safety import DrugHold
from cds_service.clinical.expected_counts import NOTHING_EXPECTED, CountsExpected
from cds_service.clinical.febrile_neutropenia import FnAssessment, FnState
from cds_service.clinical.findings import Assessment, Finding, FindingKind
from cds_service.clinical.knowledge import fn_rule

F = FindingKind
RANK = {"critical": 0, "warning": 1, "info": 2}


def _priority(card: Card) -> tuple[int, int]:
    """Highest indicator first; at the same indicator, febrile neutropenia, then a drug, then the rest."""
    finding = card.finding or ""
    kind = 0 if finding == "febrile_neutropenia" else 1 if finding.startswith("drug_") else 2
    return RANK[card.indicator], kind


def one_answer(cards: list[Card]) -> list[Card]:
    """Cards in priority order, each catalogue order offered on the first card that suggests it only."""
    offered: set[str] = set()
    answer = []
    for card in sorted(cards, key=_priority):
        kept = []
        for suggestion in card.suggestions:
            if suggestion.orders and set(suggestion.orders) <= offered:
                continue
            if card.selection_behavior != "at-most-one" and offered & set(suggestion.orders):
                continue
            kept.append(suggestion)
        for suggestion in kept:
            offered.update(suggestion.orders)
        if len(kept) != len(card.suggestions):
            card = replace(card, suggestions=tuple(kept), selection_behavior=card.selection_behavior if kept else None)
        answer.append(card)
    return answer


def _fever_watch(neutropenia: Finding | None, fn: FnAssessment | None) -> tuple[tuple[str, ...], str | None]:
    """For the card that owns a current ANC below the CTCAE FN limit: the temperature line and the ask."""
    if fn is None or neutropenia is None or not neutropenia.significant or neutropenia.stale:
        return (), None
    if not fn.neutrophils.below_ctcae:
        return (), None
    return (fever_watch(fn),), "check for fever (none recorded)" if not fn.fever.readings else "watch for fever"


def _neutropenia_suspected(fn: FnAssessment, expected: CountsExpected) -> bool:
    """A fever without a current ANC is a possible febrile neutropenia only where neutropenia is plausible:
    a drug or diagnosis on the chart, or a last ANC below the CTCAE limit."""
    latest = fn.neutrophils.latest
    return expected.neutropenia_risk or (latest is not None and latest.value < fn_rule("ctcae_fn_anc").value)


# A lineage card to build: its finding, the related findings shown as rows, extra lines and the ask.
Lineage = tuple[Finding, tuple[Finding, ...], tuple[str, ...], str | None]


def _white_cells(found: dict[F, Finding], fn: FnAssessment | None) -> Lineage | None:
    main = found.get(F.NEUTROPENIA) or found.get(F.LEUKOPENIA) or found.get(F.LYMPHOPENIA)
    if main is None:
        return None
    rows = tuple(f for kind in (F.LEUKOPENIA, F.LYMPHOPENIA) if (f := found.get(kind)) and f is not main)
    extra, ask = _fever_watch(found.get(F.NEUTROPENIA), fn)
    if ask and main.persistent:
        ask += ", haematology referral"
    return main, rows, extra, ask


def _lineage_cards(
    lineages: list[Lineage],
    assessment: Assessment,
    contexts: dict[F, FindingContext],
    patient_id: str,
    encounter_id: str | None,
) -> list[Card]:
    """The lineage cards, the assessment's gaps on the one `one_answer` puts first (highest indicator,
    then the order built): said once, where the clinician reads first."""
    first = min(range(len(lineages)), key=lambda i: RANK[indicator(lineages[i][0], contexts.get(lineages[i][0].kind))])
    return [
        finding_card(
            finding, assessment, patient_id, encounter_id, contexts.get(finding.kind), rows, extra, ask, i == first
        )
        for i, (finding, rows, extra, ask) in enumerate(lineages)
    ]


def patient_view_cards(
    assessment: Assessment,
    patient_id: str,
    encounter_id: str | None = None,
    contexts: dict[F, FindingContext] | None = None,
    fn: FnAssessment | None = None,
    holds: tuple[DrugHold, ...] = (),
    expected: CountsExpected = NOTHING_EXPECTED,
) -> list[Card]:
    contexts = contexts or {}
    found = {f.kind: f for f in assessment.findings if not f.history}
    cards = []
    # febrile neutropenia, or a fever at its boundary, owns the ANC
    febrile_neutropenia = fn is not None and fn.state in (FnState.FEBRILE_NEUTROPENIA, FnState.FEVER_AT_BOUNDARY)
    if fn is not None and fn.state is FnState.FEBRILE_NEUTROPENIA:
        cards.append(fn_card(fn, gap_lines((), fn.issues), patient_id, encounter_id))
        if companion := considerations_card(fn, patient_id, encounter_id):
            cards.append(companion)
    elif fn is not None and fn.state is FnState.FEVER_AT_BOUNDARY:
        cards.append(boundary_card(fn, gap_lines((), fn.issues), patient_id, encounter_id))
    elif fn is not None and fn.state is FnState.FEVER_ANC_UNKNOWN and _neutropenia_suspected(fn, expected):
        cards.append(fever_without_anc_card(fn, gap_lines((), fn.issues), patient_id, encounter_id))
    cards.extend(drug_safety_card(h, patient_id, encounter_id) for h in holds)
    lineages: list[Lineage] = []
    if pancytopenia := found.get(F.PANCYTOPENIA):
        rows = tuple(f for kind in (F.LEUKOPENIA, F.LYMPHOPENIA) if (f := found.get(kind)))
        extra, ask = _fever_watch(found.get(F.NEUTROPENIA), None if febrile_neutropenia else fn)
        lineages.append((pancytopenia, rows, extra, f"{ask}, smear, haematology referral" if ask else None))
    else:
        if not febrile_neutropenia and (white := _white_cells(found, fn)):
            lineages.append(white)
        lineages.extend(
            (finding, (), (), None) for kind in (F.ANAEMIA, F.THROMBOCYTOPENIA) if (finding := found.get(kind))
        )
    if lineages:
        cards.extend(_lineage_cards(lineages, assessment, contexts, patient_id, encounter_id))
    if not cards and (gap := data_gap_card(assessment, patient_id, encounter_id, expected.reasons)):
        cards.append(gap)
    return one_answer(cards)
