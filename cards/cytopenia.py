"""Cytopenia findings -> CDS Hooks cards with their evidence and suggested orders."""

from __future__ import annotations

from cards.catalogue import card_source, override_reasons
from cards.context import context_blocks, problem_list_suggestions
from cards.markdown import bullets, escape, number, table, when
from cards.model import Action, Card, Suggestion
from cards.orders import draft_order, order_label
from cds_service.clinical.context import FindingContext, settled_indicator
from cds_service.clinical.findings import Assessment, Finding, FindingKind
from cds_service.clinical.knowledge import threshold
from fhir_mappings import Analyte, DataIssue

A = Analyte
F = FindingKind

TITLES = {
    F.NEUTROPENIA: "Neutropenia",
    F.LEUKOPENIA: "Leukopenia",
    F.LYMPHOPENIA: "Lymphopenia",
    F.ANAEMIA: "Anaemia",
    F.THROMBOCYTOPENIA: "Thrombocytopenia",
    F.PANCYTOPENIA: "Pancytopenia",
}
SHORT = {
    A.ABSOLUTE_NEUTROPHIL_COUNT: "ANC",
    A.WHITE_BLOOD_CELLS: "WBC",
    A.LYMPHOCYTES: "lymphocytes",
    A.HEMOGLOBIN: "Hb",
    A.PLATELETS: "platelets",
}
UNIT_TEXT = {"10*9/L": "×10⁹/L", "g/dL": "g/dL", "%": "%"}
DISCLAIMER = "Suggestions only: the clinician decides."


def value_text(analyte: Analyte, value: float, unit: str) -> str:
    return f"{SHORT.get(analyte, analyte.replace('_', ' '))} {number(value)} {UNIT_TEXT.get(unit, unit)}"


def _headline(finding: Finding) -> str:
    point = finding.latest
    text = value_text(finding.analyte, point.value, point.evidence[0].unit if not point.derivation else "10*9/L")
    return f"{text} ({point.status_label})" if point.status_label else text


def _grade_text(finding: Finding) -> str:
    parts = [finding.grade.label] if finding.grade else []
    if finding.severity:
        parts.append(finding.severity)
    return ", ".join(parts)


def _summary(finding: Finding) -> str:
    if finding.kind is F.PANCYTOPENIA:
        text = "Pancytopenia: " + ", ".join(_headline(f) for f in finding.lineages)
    elif not finding.significant:
        text = f"{_headline(finding)}: within the Duffy-null reference interval"
        if finding.grade:
            text += f" ({finding.grade.label} for toxicity reporting)"
    else:
        text = f"{TITLES[finding.kind]}: {_headline(finding)}"
        if grade := _grade_text(finding):
            text += f" ({grade})"
    if finding.stale:
        text += f", result from {finding.latest.time:%Y-%m-%d}"
    return text


def _indicator(finding: Finding) -> str:
    """info for CTCAE grade 1-2, warning for grade 3-4 and pancytopenia; critical is kept for FN."""
    if not finding.significant:
        return "info"
    if finding.kind is F.PANCYTOPENIA or finding.grade_number >= 3:
        return "warning"
    return "info"


def _evidence_rows(finding: Finding) -> list[tuple[str, ...]]:
    rows = []
    for source in finding.lineages or (finding,):
        point = source.latest
        if point.derivation:
            rows.append(
                (
                    "ANC (computed)",
                    f"{number(point.value)} ×10⁹/L",
                    escape(point.derivation),
                    when(point.time),
                    "computed",
                )
            )
        for m in point.evidence:
            rows.append(
                (
                    f"{escape(m.analyte.replace('_', ' '))} ({m.system_code})",
                    f"{number(m.value)} {UNIT_TEXT.get(m.unit, m.unit)}",
                    escape(m.reported)
                    + (f" ({escape(m.note)})" if m.note else "")
                    + (f" **{m.status_label}**" if m.status_label else ""),
                    when(m.time),
                    escape(m.source),
                )
            )
    return rows


def _trend_text(finding: Finding) -> str | None:
    trend = finding.trend
    if trend is None or trend.count < 2:
        return None
    unit = "g/dL" if finding.analyte is A.HEMOGLOBIN else "×10⁹/L"
    parts = [f"{trend.count} results; nadir {number(trend.nadir.value)} {unit} on {trend.nadir.time:%Y-%m-%d}"]
    if trend.falling:
        parts.append("falling since the previous result")
    if trend.low_since:
        parts.append(
            f"low since {trend.low_since:%Y-%m-%d}" + (" (persistent, over 4 weeks)" if finding.persistent else "")
        )
    return "; ".join(parts) + "."


def _detail(finding: Finding, assessment: Assessment) -> str:
    blocks = []
    grade = _grade_text(finding)
    lead = (
        f"**{_headline(finding)}** on {when(finding.latest.time)}"
        if finding.kind is not F.PANCYTOPENIA
        else (
            "**All three lineages are low on the same draw** ("
            + "; ".join(f"{_headline(f)}: {_grade_text(f)}" for f in finding.lineages)
            + ")"
        )
    )
    if grade and finding.kind is not F.PANCYTOPENIA:
        lead += f": {grade} ({escape(finding.grade.term) if finding.grade else 'WHO'})"
    blocks.append(lead + ".")
    if finding.stale:
        blocks.append(f"**Not current:** this result is {finding.age_days:.0f} days old; counts may have changed.")
    blocks.append(table(("Result", "Value", "As reported", "Time", "Source"), _evidence_rows(finding)))
    if trend := _trend_text(finding):
        blocks.append(f"Trend: {trend}")
    unit = "g/dL" if finding.analyte is A.HEMOGLOBIN else "×10⁹/L"
    limit = f"{number(finding.lower_limit.value)} {unit} " if finding.lower_limit.value is not None else ""
    blocks.append(f"Lower limit used: {limit}({escape(finding.lower_limit.basis)}).")
    if finding.notes:
        blocks.append(bullets([escape(n) for n in finding.notes]))
    blocks.extend(gap_blocks((*assessment.missing, *assessment.ungraded), assessment.issues))
    blocks.append(f"Sources: {escape(card_source(finding.kind.value).label.split(': ', 1)[1])}. {DISCLAIMER}")
    return "\n\n".join(blocks)


def gap_blocks(missing: tuple[str, ...], issues: tuple[DataIssue, ...]) -> list[str]:
    """What could not be assessed and what data was not used, for any card's detail."""
    blocks = []
    if missing:
        blocks.append("**Not assessed:**\n" + bullets([escape(m) for m in missing]))
    if issues:
        blocks.append("**Data not used:**\n" + bullets([_issue_text(i) for i in issues[:10]]))
        if len(issues) > 10:
            blocks.append(f"…and {len(issues) - 10} more.")
    return blocks


def _issue_text(issue: DataIssue) -> str:
    return f"{escape(issue.source)}: {escape(issue.problem)}"


def _suggestion(
    orders: tuple[str, ...], label: str, patient_id: str, encounter_id: str | None, reason: str
) -> Suggestion:
    return Suggestion(
        label=label,
        actions=tuple(
            Action("create", f"Draft order: {order_label(o)}", draft_order(o, patient_id, encounter_id, reason))
            for o in orders
        ),
    )


def _suggestions(
    finding: Finding, patient_id: str, encounter_id: str | None, settled: bool = False
) -> tuple[Suggestion, ...]:
    """The next orders to consider. None for a count within the Duffy-null interval: asymptomatic
    Duffy-null patients need no further testing for that count alone (ASH/AAFP Choosing Wisely). A
    documented cytopenia no worse than before (`settled`) does not get its work-up again at every visit."""
    if not finding.significant:
        return ()
    reason = _summary(finding)

    def offer(orders: tuple[str, ...], label: str | None = None) -> Suggestion:
        return _suggestion(orders, label or order_label(orders[0]), patient_id, encounter_id, reason)

    kind = finding.kind
    suggestions = [offer(("cbc_with_differential",))]
    work_up = not settled
    if (
        work_up
        and kind in (F.NEUTROPENIA, F.THROMBOCYTOPENIA, F.PANCYTOPENIA, F.LEUKOPENIA)
        and finding.grade_number >= 2
    ):
        suggestions.append(offer(("peripheral_smear",)))
    if kind is F.ANAEMIA and work_up:
        suggestions.append(
            offer(
                ("reticulocytes", "ferritin", "vitamin_b12", "folate"),
                "Anaemia work-up: reticulocytes, ferritin, vitamin B12, folate",
            )
        )
        rbc = threshold("red_cell_transfusion_hemoglobin")
        if finding.latest.value < rbc.value:
            suggestions.append(
                offer(
                    ("red_cell_transfusion",), f"Consider red-cell transfusion (Hb below {rbc.value:g} g/dL, AABB 2023)"
                )
            )
    if kind is F.THROMBOCYTOPENIA:
        platelets = threshold("platelet_transfusion")
        if finding.latest.value < platelets.value:
            suggestions.append(
                offer(
                    ("platelet_transfusion",), f"Consider platelet transfusion (below {platelets.value:g} ×10⁹/L, AABB)"
                )
            )
    if work_up and (kind is F.PANCYTOPENIA or (finding.persistent and finding.significant)):
        suggestions.append(offer(("haematology_referral",)))
    return tuple(suggestions)


def finding_card(
    finding: Finding,
    assessment: Assessment,
    patient_id: str,
    encounter_id: str | None,
    context: FindingContext | None = None,
) -> Card:
    return Card(
        summary=_summary(finding),
        indicator=settled_indicator(_indicator(finding), context),
        source=card_source(finding.kind.value),
        detail="\n\n".join([_detail(finding, assessment), *context_blocks(context)]),
        suggestions=_suggestions(finding, patient_id, encounter_id, bool(context and context.known_and_stable))
        + problem_list_suggestions(context, patient_id, encounter_id),
        selection_behavior="any",
        override_reasons=override_reasons(),
        finding=finding.kind.value,
        trigger=";".join(f"{m.source}={m.value:g}" for f in finding.lineages or (finding,) for m in f.latest.evidence),
        grade=finding.grade_number,
    )


def data_gap_card(assessment: Assessment) -> Card | None:
    """Said out loud when counts are missing or unusable: absence of data is never 'no cytopenia'."""
    no_counts = assessment.latest_count is None
    if not (no_counts or assessment.issues or assessment.ungraded):
        return None
    if no_counts:
        summary = "Cytopenia not assessed: no usable blood count"
    elif assessment.issues:
        summary = "Blood counts partly unusable: cytopenia assessment may be incomplete"
    else:
        summary = "Haemoglobin not graded: no WHO cut-off below 6 months and no lab reference range"
    detail = "\n\n".join(
        [
            "The service could not read everything it needs to assess cytopenia. "
            "This is **not** a statement that the counts are normal.",
            *gap_blocks((*assessment.missing, *assessment.ungraded), assessment.issues),
            DISCLAIMER,
        ]
    )
    return Card(summary=summary, indicator="info", source=card_source("data_gap"), detail=detail, finding="data_gap")


def cytopenia_cards(
    assessment: Assessment,
    patient_id: str,
    encounter_id: str | None = None,
    contexts: dict[FindingKind, FindingContext] | None = None,
) -> list[Card]:
    cards = [
        finding_card(f, assessment, patient_id, encounter_id, (contexts or {}).get(f.kind)) for f in assessment.findings
    ]
    if not cards and (gap := data_gap_card(assessment)):
        cards.append(gap)
    return cards
