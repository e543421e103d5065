"""Cytopenia findings -> one card per problem: the finding and the ask, the evidence, the next orders.

A card's detail is short by construction (`fit` keeps it within `DETAIL_MAX`): the evidence table,
then the reason, then the chart context. Every number comes from the finding or its knowledge row.
"""

from __future__ import annotations

from functools import cache

from cards.catalogue import card_links, card_source, override_reasons
from cards.context import context_blocks, problem_list_suggestions
from cards.markdown import clip, escape, fit, listed, sentence_start, table, when
from cards.model import DETAIL_BUDGET, SUMMARY_MAX, Action, Card, Indicator, Suggestion
from cards.numbers import NAMES, limit_text, named, unit_of, with_unit
from cards.orders import draft_order, order_label
from cds_service.clinical.anaemia import youngest_who_months
from cds_service.clinical.context import FindingContext
from cds_service.clinical.findings import Assessment, Finding, FindingKind
from cds_service.clinical.knowledge import ctcae_cuts, neutropenia_bands, threshold, who_citation
from fhir_mappings import Analyte, DataIssue
from fhir_mappings.knowledge import unit_key

TITLES = {
    FindingKind.NEUTROPENIA: "Neutropenia",
    FindingKind.LEUKOPENIA: "Leukopenia",
    FindingKind.LYMPHOPENIA: "Lymphopenia",
    FindingKind.ANAEMIA: "Anaemia",
    FindingKind.THROMBOCYTOPENIA: "Thrombocytopenia",
    FindingKind.PANCYTOPENIA: "Pancytopenia",
}
MOST_ISSUES = 3
UNIT_TEXT = {"10*9/L": "×10⁹/L", "g/dL": "g/dL", "%": "%"}  # UCUM unit -> as printed


@cache
def _cited_limits(analyte: Analyte) -> tuple[float, ...]:
    """The CTCAE cut-offs (and, for the ANC, the neutropenia bands) of an analyte: knowledge rows, not
    site settings, so looked up once per analyte rather than for every number a card prints."""
    cuts = ctcae_cuts().get((analyte, unit_key(unit_of_row(analyte))), ())
    bands = [below for _, below, _ in neutropenia_bands()] if analyte is Analyte.ABSOLUTE_NEUTROPHIL_COUNT else []
    return (*(c.below for c in cuts), *bands)


def judged_by(finding: Finding) -> tuple[float | None, ...]:
    """Every limit this finding's value was compared with: its lower limit and the CTCAE cut-offs."""
    return (finding.lower_limit.value, *_cited_limits(finding.analyte))


def unit_of_row(analyte: Analyte) -> str:
    return "g/dL" if analyte is Analyte.HEMOGLOBIN else "10*9/L"


def headline(finding: Finding, unit: bool = True) -> str:
    """'ANC 0.3' (a summary) or 'ANC 0.3 ×10⁹/L'; Hb always keeps g/dL; a preliminary result says so."""
    text = named(
        finding.analyte, finding.latest.value, judged_by(finding), unit or finding.analyte is Analyte.HEMOGLOBIN
    )
    return f"{text} ({finding.latest.status_label})" if finding.latest.status_label else text


def grade_text(finding: Finding) -> str:
    parts = [finding.grade.label] if finding.grade else []
    if finding.severity:
        parts.append(finding.severity)
    return ", ".join(parts)


def _ask(finding: Finding) -> str:
    """What the clinician is asked to consider, in a few words."""
    kind = finding.kind
    if not finding.significant:
        return "no work-up for this count alone"
    if finding.stale:
        return "not current: repeat CBC"
    if kind is FindingKind.PANCYTOPENIA:
        return "smear review and haematology referral"
    asks = []
    if kind is FindingKind.ANAEMIA:
        rbc = threshold("red_cell_transfusion_hemoglobin").value
        asks.append("consider red-cell transfusion" if finding.latest.value < rbc else "anaemia work-up")
    elif kind is FindingKind.THROMBOCYTOPENIA and finding.latest.value < threshold("platelet_transfusion").value:
        asks.append("consider platelet transfusion")
    elif (
        kind in (FindingKind.NEUTROPENIA, FindingKind.THROMBOCYTOPENIA, FindingKind.LEUKOPENIA)
        and finding.grade_number >= 2
    ):
        asks.append("repeat CBC and smear")
    else:
        asks.append("repeat CBC with differential")
    if finding.persistent:
        asks.append("haematology referral")
    return ", ".join(asks)


def summary(finding: Finding, ask: str | None = None) -> str:
    ask = ask or _ask(finding)
    if finding.kind is FindingKind.PANCYTOPENIA:
        text = "Pancytopenia: " + ", ".join(headline(f, unit=False) for f in finding.lineages)
    elif not finding.significant:
        text = f"{headline(finding)}: within the Duffy-null reference interval"
        if finding.grade:
            text += f" ({finding.grade.label} for toxicity reporting)"
    else:
        text = f"{TITLES[finding.kind]}: {headline(finding, unit=False)}"
        if grade := grade_text(finding):
            text += f" ({grade})"
    if finding.stale:
        text += f", result of {finding.latest.time:%Y-%m-%d}"
    full = f"{text} — {ask}"
    return full if len(full) <= SUMMARY_MAX else clip(text, SUMMARY_MAX)


def indicator(finding: Finding, context: FindingContext | None = None) -> Indicator:
    """info for CTCAE grade 1-2, warning for grade 3-4 and pancytopenia; critical is kept for febrile
    neutropenia and drug holds. A documented chronic cytopenia no worse than before is information."""
    if not finding.significant or (context is not None and context.known_and_stable):
        return "info"
    if finding.kind is FindingKind.PANCYTOPENIA or finding.grade_number >= 3:
        return "warning"
    return "info"


def _row(finding: Finding, with_time: bool) -> tuple[str, ...]:
    point = finding.latest
    name = NAMES.get(finding.analyte, finding.analyte.replace("_", " "))
    origin = escape(point.derivation) if point.derivation else ", ".join(escape(m.source) for m in point.evidence[:2])
    cells = [
        sentence_start(name),
        with_unit(finding.analyte, point.value, judged_by(finding))
        + (f" **{point.status_label}**" if point.status_label else ""),
        str(finding.grade.grade) if finding.grade else (finding.severity or "–"),
    ]
    if with_time:
        cells.append(f"{point.time:%Y-%m-%d %H:%M}")
    return (*cells, origin)


def evidence_table(findings: tuple[Finding, ...]) -> str:
    """One row per count; when all were drawn together, the time is said once above the table."""
    times = {f.latest.time for f in findings}
    header = ("Count", "Result", "CTCAE grade", "Result from")
    if len(times) == 1:
        lead = f"Drawn {when(findings[0].latest.time)}:\n\n"
        return lead + table(header, [_row(f, False) for f in findings])
    return table((*header[:3], "Drawn (UTC)", header[3]), [_row(f, True) for f in findings])


def _limit_text(finding: Finding) -> str | None:
    limit = finding.lower_limit
    if finding.kind is FindingKind.PANCYTOPENIA or limit.value is None:
        return None
    if limit.basis.startswith("the lab"):
        return f"Lower limit {limit_text(limit.value)} {unit_of(finding.analyte)} (the lab's reference range)."
    return f"Lower limit used: {escape(limit.basis)}."


def _trend_text(finding: Finding) -> str | None:
    trend = finding.trend
    if trend is None or trend.count < 2:
        return None
    nadir = with_unit(finding.analyte, trend.nadir.value, judged_by(finding))
    parts = [f"Trend: {trend.count} results; nadir {nadir} on {trend.nadir.time:%Y-%m-%d}"]
    if trend.falling:
        parts.append("falling since the previous result")
    if trend.low_since:
        days = threshold("persistent_cytopenia_days").value
        persistent = f" (persistent, over {days:g} days)" if finding.persistent else ""
        parts.append(f"low since {trend.low_since:%Y-%m-%d}{persistent}")
    return "; ".join(parts) + "."


def gap_lines(missing: tuple[str, ...], issues: tuple[DataIssue, ...]) -> list[str]:
    """What could not be assessed and which data was not used, in at most two short lines."""
    lines = []
    if missing:
        lines.append("**Not assessed:** " + escape("; ".join(missing)) + ".")
    if issues:
        lines.append(
            "**Data not used:** "
            + listed([f"{escape(i.source)}: {escape(i.problem)}" for i in issues], MOST_ISSUES)
            + "."
        )
    return lines


def _suggestion(
    orders: tuple[str, ...], label: str, patient_id: str, encounter_id: str | None, reason: str
) -> Suggestion:
    return Suggestion(
        label=label,
        actions=tuple(
            Action("create", f"Draft order: {order_label(o)}", draft_order(o, patient_id, encounter_id, reason))
            for o in orders
        ),
        orders=orders,
    )


def suggestions(
    finding: Finding, reason: str, patient_id: str, encounter_id: str | None, settled: bool = False
) -> tuple[Suggestion, ...]:
    """The next orders to consider. None for a count within the Duffy-null interval: asymptomatic
    Duffy-null patients need no further testing for that count alone (ASH/AAFP Choosing Wisely).
    A count that is not current asks for a new one only: no transfusion on an old value. A documented
    cytopenia no worse than before (`settled`) does not get its work-up again at every visit.
    Each draft order gives `reason` as its reason: the finding's own `summary`, which its card also needs."""
    if not finding.significant:
        return ()

    def offer(orders: tuple[str, ...], label: str | None = None) -> Suggestion:
        return _suggestion(orders, label or order_label(orders[0]), patient_id, encounter_id, reason)

    kind = finding.kind
    offered = [offer(("cbc_with_differential",), "Repeat CBC with differential")]
    if finding.stale:
        return tuple(offered)
    work_up = not settled
    if (
        work_up
        and kind
        in (FindingKind.NEUTROPENIA, FindingKind.THROMBOCYTOPENIA, FindingKind.PANCYTOPENIA, FindingKind.LEUKOPENIA)
        and finding.grade_number >= 2
    ):
        offered.append(offer(("peripheral_smear",)))
    lineages = {f.kind: f for f in (finding.lineages or (finding,))}
    if (anaemia := lineages.get(FindingKind.ANAEMIA)) and work_up:
        offered.append(
            offer(
                ("reticulocytes", "ferritin", "vitamin_b12", "folate"),
                "Anaemia work-up: reticulocytes, ferritin, vitamin B12, folate",
            )
        )
        rbc = threshold("red_cell_transfusion_hemoglobin")
        if anaemia.latest.value < rbc.value:
            offered.append(
                offer(("red_cell_transfusion",), f"Consider red-cell transfusion (Hb below {rbc.value:g} g/dL)")
            )
    if (platelets := lineages.get(FindingKind.THROMBOCYTOPENIA)) and platelets.latest.value < (
        limit := threshold("platelet_transfusion")
    ).value:
        offered.append(
            offer(("platelet_transfusion",), f"Consider platelet transfusion (below {limit.value:g} ×10⁹/L)")
        )
    if work_up and (kind is FindingKind.PANCYTOPENIA or finding.persistent):
        offered.append(offer(("haematology_referral",)))
    return tuple(offered)


def finding_card(
    finding: Finding,
    assessment: Assessment,
    patient_id: str,
    encounter_id: str | None,
    context: FindingContext | None = None,
    rows: tuple[Finding, ...] = (),
    extra: tuple[str, ...] = (),
    ask: str | None = None,
    gaps: bool = True,
) -> Card:
    """One problem's card; `rows` are related findings shown as rows of its table (leukopenia and
    lymphopenia on a neutropenia card), `extra` lines the caller adds (fever watch on a neutropenia card).
    Lines in order of importance, so what `fit` leaves out is the least needed: what could not be
    assessed comes before the trend and the chart context. `gaps` False leaves the assessment's gaps
    (what could not be assessed, data not used) to another card of the same answer."""
    level = indicator(finding, context)
    own_summary = summary(finding)
    lead = [*(finding.lineages or (finding,)), *rows]
    blocks = [
        evidence_table(tuple(lead)),
        f"**Not current:** this result is {finding.age_days:.0f} days old; counts older than "
        f"{threshold('stale_result_days').value:g} days may have changed."
        if finding.stale
        else None,
        *extra,
        *(escape(n) for n in finding.notes),
        *(gap_lines((*assessment.missing, *assessment.ungraded), assessment.issues) if gaps else ()),
        _trend_text(finding),
        *context_blocks(context),
        _limit_text(finding),
    ]
    return Card(
        summary=summary(finding, ask) if ask else own_summary,
        indicator=level,
        source=card_source(finding.kind.value),
        detail=fit(blocks, DETAIL_BUDGET[level]),
        suggestions=suggestions(
            finding, own_summary, patient_id, encounter_id, bool(context and context.known_and_stable)
        )
        + problem_list_suggestions(context, patient_id, encounter_id),
        selection_behavior="any",
        override_reasons=override_reasons(),
        links=card_links(finding.kind.value),
        finding=finding.kind.value,
        trigger=";".join(f"{m.source}={m.value:g}" for f in lead for m in f.latest.evidence),
        grade=finding.grade_number,
    )


def data_gap_card(
    assessment: Assessment, patient_id: str, encounter_id: str | None = None, expected: tuple[str, ...] = ()
) -> Card | None:
    """Said out loud when counts were expected and could not be used: absence of data is never 'no cytopenia'.

    Expected means: data that could not be used (a failed prefetch, results entered in error, without a
    value, in an unconvertible unit, about another patient, only preliminary) or a chart that calls for
    counts (`expected`: chemotherapy, clozapine, a TKI, a fever, a known cytopenia). A patient who simply
    has no CBC gets no card.
    """
    current = assessment.latest_count is not None and (
        (assessment.as_of - assessment.latest_count).days <= threshold("history_lookback_days").value
    )
    unusable = (
        bool(assessment.issues)
        or bool(assessment.ungraded)
        or any(m.startswith("only preliminary") for m in assessment.missing)
    )
    if not unusable and (current or not expected):
        return None
    days = threshold("history_lookback_days").value
    ask = " — order a CBC with differential" if expected else " — check the results not used"
    if assessment.latest_count is None:
        summary_text = "Cytopenia not assessed: no usable blood count" + ask
    elif not current:
        summary_text = f"No blood count in the last {days:g} days — order a CBC with differential"
    elif assessment.issues or not assessment.ungraded:
        summary_text = "Blood counts partly unusable: cytopenia assessment may be incomplete" + ask
    else:
        summary_text = (
            f"Haemoglobin not graded: no {who_citation()} cut-off below {youngest_who_months()} months and no lab "
            "reference range"
        )
    blocks = [
        "This is **not** a statement that the counts are normal.",
        f"Counts are expected here: {escape(', '.join(expected))}." if expected else None,
        f"Latest count {assessment.latest_count:%Y-%m-%d}: older than the {days:g}-day look-back, shown as history."
        if assessment.latest_count is not None and not current
        else None,
        *gap_lines((*assessment.missing, *assessment.ungraded), assessment.issues),
    ]
    offered = (
        (_suggestion(("cbc_with_differential",), "CBC with differential", patient_id, encounter_id, summary_text),)
        if expected
        else ()
    )
    return Card(
        summary=clip(summary_text, SUMMARY_MAX),
        indicator="info",
        source=card_source("data_gap"),
        detail=fit(blocks, DETAIL_BUDGET["info"]),
        suggestions=offered,
        selection_behavior="any" if offered else None,
        links=card_links("data_gap"),
        finding="data_gap",
    )


def cytopenia_cards(
    assessment: Assessment,
    patient_id: str,
    encounter_id: str | None = None,
    contexts: dict[FindingKind, FindingContext] | None = None,
) -> list[Card]:
    """One card per finding, not composed: the population worklist's view. The chart-opening answer, one
    card per problem with each order once, is `cards.patient_view.patient_view_cards`."""
    return [
        finding_card(f, assessment, patient_id, encounter_id, (contexts or {}).get(f.kind)) for f in assessment.findings
    ]
