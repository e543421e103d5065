"""A drug in a hold band at chart opening -> its own card: the count, the band, the row's action."""

from __future__ import annotations

from cards.catalogue import card_links, card_source, override_reasons
from cards.markdown import clip, escape, fit, sentence_start, when
from cards.model import DETAIL_BUDGET, SUMMARY_MAX, Action, Card, Indicator, Suggestion
from cards.numbers import limit_text, named
from cards.orders import draft_order, order_label
from cds_service.clinical.drug_safety import DrugHold


def _counts(hold: DrugHold, unit: bool) -> str:
    return ", ".join(named(c.analyte, c.point.value, (c.below,), unit) for c in hold.low)


def summary(hold: DrugHold) -> str:
    """The count, the band and the row's action; a count that is not current asks for a new one first."""
    drug = hold.drug.capitalize()
    if hold.stale:
        return clip(
            f"{drug}: {_counts(hold, unit=False)} on {hold.low[0].point.time:%Y-%m-%d} (not current), "
            f"{hold.band} — repeat the count now",
            SUMMARY_MAX,
        )
    ask = "interrupt" if hold.rule == "clozapine" else "stop"
    text = f"{drug}: {_counts(hold, unit=False)}, {hold.band} — {ask} {hold.drug}"
    if hold.consult:
        text += ", haematology consult"
    return clip(text, SUMMARY_MAX)


def _suggestion(order: str, label: str, patient_id: str, encounter_id: str | None, reason: str) -> Suggestion:
    return Suggestion(
        label,
        (Action("create", f"Draft order: {order_label(order)}", draft_order(order, patient_id, encounter_id, reason)),),
        orders=(order,),
    )


def drug_safety_card(hold: DrugHold, patient_id: str, encounter_id: str | None) -> Card:
    text = summary(hold)
    counts = "; ".join(
        f"{named(c.analyte, c.point.value, (c.below,))} at {when(c.point.time)}, below {limit_text(c.below)}"
        for c in hold.low
    )
    blocks = [
        f"**{escape(hold.medication.text)}** is active ({escape(hold.medication.source)}); {counts}.",
        f"**{escape(sentence_start(hold.band))}:** {escape(hold.action)}",
        f"Monitoring: {escape(hold.monitoring)}" if hold.monitoring else None,
    ]
    offered = [
        _suggestion("cbc_with_differential", "Repeat CBC with differential (ANC)", patient_id, encounter_id, text)
    ]
    if hold.consult:
        offered.append(_suggestion("haematology_referral", "Haematology consult", patient_id, encounter_id, text))
    level: Indicator = "critical" if hold.indicator == "critical" and not hold.stale else "warning"
    return Card(
        summary=text,
        indicator=level,
        source=card_source(f"drug_{hold.rule}"),
        detail=fit(blocks, DETAIL_BUDGET[level]),
        suggestions=tuple(offered),
        selection_behavior="any",
        override_reasons=override_reasons(),
        links=card_links(f"drug_{hold.rule}"),
        finding=f"drug_{hold.rule}",
        trigger=";".join(f"{m.source}={m.value:g}" for c in hold.low for m in c.point.evidence),
        grade=4 if hold.indicator == "critical" else 3,
    )
