"""Order-safety alerts -> CDS Hooks cards: evidence, rule and source, and what the prescriber can do."""

from __future__ import annotations

from typing import cast

from cards.catalogue import OVERRIDE_REASON_SYSTEM, card_links, card_source
from cards.markdown import clip, escape, fit, listed, sentence_start, table
from cards.model import DETAIL_BUDGET, SUMMARY_MAX, Action, Card, Coding, Indicator, Suggestion
from cards.numbers import with_unit
from cards.orders import draft_order, order_label
from cds_service.clinical.order_safety import CountStatus, OrderAlert
from cds_service.knowledge_tables import knowledge_loader, read_table
from fhir_mappings import Analyte, DataIssue
from fhir_mappings.medications import MedicationFact


@knowledge_loader
def _override_reasons() -> dict[str, tuple[Coding, ...]]:
    by_rule: dict[str, list[Coding]] = {}
    for row in read_table("cards", "order_override_reasons.csv"):
        for rule in row["rules"].split(";"):
            by_rule.setdefault(rule, []).append(Coding(OVERRIDE_REASON_SYSTEM, row["code"], row["display"]))
    return {rule: tuple(codes) for rule, codes in by_rule.items()}


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


ANALYTES = {
    "ANC": Analyte.ABSOLUTE_NEUTROPHIL_COUNT,
    "platelets": Analyte.PLATELETS,
    "body weight": Analyte.BODY_WEIGHT,
}


def _evidence_row(status: CountStatus) -> tuple[str, ...]:
    point = status.point
    label = sentence_start(status.label)
    if point is None:
        return (label, "–", "–", escape(status.gap() or ""))
    age = f"{status.age_days:.0f} days" + (" (**not current**)" if status.stale else "")
    analyte = ANALYTES.get(status.label)
    value = with_unit(analyte, point.value) if analyte else f"{point.value:g} {status.unit}"
    if point.status_label:
        value += f" **{point.status_label}**"
    origin = f"computed: {escape(point.derivation)}" if point.derivation else escape(point.evidence[0].source)
    return (label, value, f"{point.time:%Y-%m-%d %H:%M} ({age})", origin)


def _medication(alert: OrderAlert) -> MedicationFact:
    medication = alert.draft.medication
    assert medication is not None, "order-safety rules raise alerts only on drafts with a recognised medication"
    return medication


def _detail(alert: OrderAlert, issues: tuple[DataIssue, ...]) -> str:
    medication = _medication(alert)
    first, *rest = [escape(s) for s in alert.statements]
    blocks = [
        f"**Draft order:** {escape(medication.text)} ({escape(alert.draft.reference)}), recognised by "
        f"{escape(clip(medication.recognised_by, 80))}.",
        first,
        table(("Count", "Result", "Drawn (UTC, age)", "Result from"), [_evidence_row(s) for s in alert.evidence]),
        *rest,
    ]
    if issues:
        blocks.append(
            "**Data not used or not sent:** "
            + listed([f"{escape(i.source)}: {escape(i.problem)}" for i in issues], 3)
            + "."
        )
    return fit(blocks, DETAIL_BUDGET[alert.indicator])


def _suggestions(alert: OrderAlert, patient_id: str, encounter_id: str | None) -> tuple[Suggestion, ...]:
    reason = _short(alert.summary)
    suggestions = []
    if alert.order_count:
        suggestions.append(
            Suggestion(
                "Order CBC with differential (ANC)",
                (
                    Action(
                        "create",
                        f"Draft order: {order_label('cbc_with_differential')}",
                        draft_order("cbc_with_differential", patient_id, encounter_id, reason),
                    ),
                ),
                is_recommended=True,
            )
        )
    if alert.consult:
        suggestions.append(
            Suggestion(
                "Haematology consult",
                (
                    Action(
                        "create",
                        f"Draft order: {order_label('haematology_referral')}",
                        draft_order("haematology_referral", patient_id, encounter_id, reason),
                    ),
                ),
            )
        )
    if alert.hold and alert.draft.has_id:
        name = _medication(alert).ingredients[0]
        suggestions.append(
            Suggestion(
                f"Remove the draft {name} order (hold)",
                (Action("delete", f"Remove the draft order for {name}", resource_id=alert.draft.reference),),
            )
        )
    return tuple(suggestions)


def order_card(
    alert: OrderAlert, patient_id: str, encounter_id: str | None, issues: tuple[DataIssue, ...] = ()
) -> Card:
    suggestions = _suggestions(alert, patient_id, encounter_id)
    return Card(
        summary=_short(alert.summary),
        # OrderAlert.indicator is typed `str` upstream; the rules only ever set an Indicator value.
        indicator=cast(Indicator, alert.indicator),
        source=card_source(f"order_{alert.rule}"),
        detail=_detail(alert, issues),
        suggestions=suggestions,
        selection_behavior="any" if suggestions else None,
        override_reasons=_override_reasons().get(alert.rule, ()),
        links=card_links(f"order_{alert.rule}"),
    )


def order_cards(
    alerts: tuple[OrderAlert, ...], patient_id: str, encounter_id: str | None, issues: tuple[DataIssue, ...] = ()
) -> list[Card]:
    return [order_card(a, patient_id, encounter_id, issues) for a in alerts]
