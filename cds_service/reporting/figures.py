"""Per service and finding: cards shown, accepted, overridden (rate), suggestions accepted, top override
reasons, suppressed repeats, latency percentiles. Override rate = cards overridden / cards shown."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from cards.catalogue import override_reasons
from cds_service.storage.models import CardRecord, FeedbackRecord, HookCallRecord

UNTAGGED = "(no finding)"
TOP_REASONS = 3


@dataclass(frozen=True, slots=True)
class FindingFigures:
    service_id: str
    finding: str
    shown: int
    accepted: int
    overridden: int
    suggestions_accepted: int
    suppressed: int
    top_override_reasons: tuple[tuple[str, int], ...]
    latency_ms: dict[str, float | None]

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.shown if self.shown else None


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime | None
    rows: tuple[FindingFigures, ...]
    unknown_card_feedback: int


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (no interpolation): the value a clinician's call actually took."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _reason_label(feedback: FeedbackRecord) -> str:
    if feedback.override_code:
        known = {reason.code: reason.display for reason in override_reasons()}
        return feedback.override_display or known.get(feedback.override_code) or feedback.override_code
    return "(comment only)" if feedback.user_comment else "(no reason given)"


def summarise(cards: Iterable, feedback: Iterable, call_ms: dict[int, float], since: datetime | None) -> Report:
    """Pure aggregation over card, feedback and call rows (as read by `load`)."""
    cards = list(cards)
    by_uuid = {card.uuid: card for card in cards}
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for card in cards:
        groups[(card.service_id, card.finding or UNTAGGED)].append(card)
    outcomes: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    unknown = 0
    for item in feedback:
        if item.card_uuid in by_uuid:
            outcomes[item.card_uuid][item.outcome].append(item)
        elif not item.known_card:
            unknown += 1
    rows = []
    for (service_id, finding), members in sorted(groups.items()):
        shown = [c for c in members if c.shown]
        overrides = [outcomes[c.uuid]["overridden"] for c in shown if outcomes[c.uuid]["overridden"]]
        accepted = [outcomes[c.uuid]["accepted"] for c in shown if outcomes[c.uuid]["accepted"]]
        reasons = Counter(_reason_label(items[-1]) for items in overrides)
        suggestions = sum(len({s for item in items for s in item.accepted_suggestions}) for items in accepted)
        latencies = [call_ms[c.call_id] for c in members if c.call_id in call_ms]
        rows.append(
            FindingFigures(
                service_id=service_id,
                finding=finding,
                shown=len(shown),
                accepted=len(accepted),
                overridden=len(overrides),
                suggestions_accepted=suggestions,
                suppressed=len(members) - len(shown),
                top_override_reasons=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]),
                latency_ms={
                    name: percentile(latencies, share) for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
                },
            )
        )
    return Report(since, tuple(rows), unknown)


def load(engine: Engine, since: datetime | None) -> tuple[list, list, dict[int, float]]:
    """Cards issued since `since`, all feedback received since then, and their calls' total latency."""
    card_query = select(CardRecord.__table__)
    feedback_query = select(FeedbackRecord.__table__)
    call_query = select(HookCallRecord.id, HookCallRecord.total_ms)
    if since is not None:
        card_query = card_query.where(CardRecord.issued_at >= since)
        feedback_query = feedback_query.where(FeedbackRecord.received_at >= since)
        call_query = call_query.where(HookCallRecord.received_at >= since)
    with engine.connect() as connection:
        cards = list(connection.execute(card_query))
        feedback = list(connection.execute(feedback_query.order_by(FeedbackRecord.id)))
        call_ms = {call_id: ms for call_id, ms in connection.execute(call_query)}
    return cards, feedback, call_ms


def daily_override_rates(cards: Iterable, feedback: Iterable) -> dict[str, dict[str, float]]:
    """finding -> {day: overridden / shown} over the cards shown that day (for the chart)."""
    overridden = {item.card_uuid for item in feedback if item.outcome == "overridden"}
    shown: dict[str, Counter] = defaultdict(Counter)
    over: dict[str, Counter] = defaultdict(Counter)
    for card in cards:
        if card.shown:
            day = card.issued_at.date().isoformat()
            shown[card.finding or UNTAGGED][day] += 1
            over[card.finding or UNTAGGED][day] += card.uuid in overridden
    return {
        finding: {day: over[finding][day] / n for day, n in sorted(days.items())} for finding, days in shown.items()
    }
