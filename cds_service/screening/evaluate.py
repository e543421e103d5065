"""Stage 2: one patient's resources through the hooks' own functions, as worklist rows.

Each service sees what its own prefetch templates would have fetched from a FHIR server (same
resource types, codes, statuses, sort and counts), and the same functions its handler calls:
`read_record`, cytopenia `assess` with its chart context and cards, febrile-neutropenia `assess` and
cards, and the order-check rules applied to each active order as if it were renewed today. The cards
give the indicator, the summary (why) and the suggestions (what next): the worklist says what the
chart would say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from urllib.parse import parse_qsl

from cards.febrile_neutropenia import febrile_neutropenia_cards
from cards.model import Card
from cards.order_safety import order_cards
from cds_service.clinical import febrile_neutropenia as fn
from cds_service.clinical.order_safety import check_orders, patient_state
from cds_service.clinical.series import Point
from cds_service.hooks import cytopenia_review, febrile_neutropenia, order_safety
from cds_service.hooks.service import CdsService
from cds_service.request import HookCall, HookData
from cds_service.screening.rules import held_tki_orders
from fhir_mappings import read_record
from fhir_mappings.observations import effective_time
from fhir_mappings.orders import read_draft_orders
from fhir_mappings.resources import Json
from fhir_mappings.times import parse_datetime

ORDER_SIGN = next(s for s in order_safety.SERVICES if s.hook == "order-sign")
RENEWAL = "-renewal"
COLUMNS = ("patient", "service", "finding", "grade", "indicator", "value", "unit", "time", "why", "suggested_action")


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the worklist."""

    patient: str
    service: str
    finding: str
    grade: int | None
    indicator: str
    value: float | None
    unit: str | None
    time: datetime | None
    why: str
    suggested_action: str

    def values(self) -> tuple:
        return tuple(getattr(self, c) for c in COLUMNS)


def _codes_match(resource: Json, wanted: frozenset[str]) -> bool:
    codings = (resource.get("code") or {}).get("coding") or ()
    return any(f"{c.get('system')}|{c.get('code')}" in wanted for c in codings if isinstance(c, dict))


def _date(resource: Json) -> datetime | None:
    if resource.get("resourceType") == "Encounter":
        return parse_datetime((resource.get("period") or {}).get("start"))
    return effective_time(resource)


@cache
def _template(query: str) -> tuple[str, str | None, tuple[tuple[str, str | tuple[str, ...] | frozenset[str]], ...]]:
    """A prefetch template split once (type, id of a read, search parameters); every patient reuses it."""
    if "?" not in query:
        kind, ident = query.split("/", 1)
        return kind, ident, ()
    kind, params = query.split("?", 1)
    return kind, None, tuple((n, _values(n, v)) for n, v in parse_qsl(params))


def _values(name: str, value: str) -> str | tuple[str, ...] | frozenset[str]:
    """A code list as a set (codes are looked up), a status list as given (a bad status may be any JSON)."""
    if name == "code":
        return frozenset(value.split(","))
    return tuple(value.split(",")) if name == "status" else value


def search(resources: Iterable[Json], query: str, patient_id: str) -> tuple[Json, ...]:
    """A prefetch template's answer over one patient's resources: the FHIR search parameters it uses."""
    kind, ident, params = _template(query)
    if ident is not None:
        ident = ident.replace("{{context.patientId}}", patient_id)
        return tuple(r for r in resources if r.get("resourceType") == kind and r.get("id") == ident)[:1]
    found = [r for r in resources if r.get("resourceType") == kind]
    count = None
    for name, value in params:
        if name == "code" and isinstance(value, frozenset):
            found = [r for r in found if _codes_match(r, value)]
        elif name == "status" and isinstance(value, tuple):
            found = [r for r in found if r.get("status") in value]
        elif name == "_sort" and value == "-date":
            dated = [(r, _date(r)) for r in found]
            found = [
                r for r, _ in sorted(dated, key=lambda rd: rd[1].timestamp() if rd[1] else float("-inf"), reverse=True)
            ]
        elif name == "_count" and isinstance(value, str):
            count = int(value)
    return tuple(found[:count] if count is not None else found)


class Chart:
    """One patient's resources, searched as a FHIR server would answer the services' prefetch templates.

    The services share most templates (patient, vitals, conditions, medications, allergies, encounters):
    each distinct template is answered once per patient, over the resources of its type only; the answer
    is `search`'s, so every service receives what it would have received alone.
    """

    def __init__(self, patient_id: str, resources: Iterable[Json]) -> None:
        self.patient_id = patient_id
        self.by_type: dict[str, list[Json]] = defaultdict(list)
        for resource in resources:
            if isinstance(kind := resource.get("resourceType"), str):  # no other value matches a template
                self.by_type[kind].append(resource)
        self._answers: dict[str, tuple[Json, ...]] = {}

    def search(self, query: str) -> tuple[Json, ...]:
        found = self._answers.get(query)
        if found is None:
            found = self._answers[query] = search(self.by_type.get(_template(query)[0], ()), query, self.patient_id)
        return found

    def hook_data(self, service: CdsService) -> HookData:
        return HookData({p.key: self.search(p.query) for p in service.prefetch})


def hook_data(service: CdsService, resources: list[Json], patient_id: str) -> HookData:
    return Chart(patient_id, resources).hook_data(service)


def renewal_bundle(resources: Iterable[Json]) -> Json:
    """Each active MedicationRequest as a draft renewing it: the active order itself is the prior one."""
    drafts = [
        {**r, "id": f"{r.get('id')}{RENEWAL}"}
        for r in resources
        if r.get("resourceType") == "MedicationRequest" and r.get("status") == "active"
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": d} for d in drafts]}


def _row(
    patient_id: str,
    service: str,
    finding: str,
    card: Card,
    point: Point | None,
    unit: str = "10*9/L",
    grade: int | None = None,
) -> Row:
    """A worklist row from a card (indicator, why, what next) and the value it rests on."""
    return Row(
        patient_id,
        service,
        finding,
        grade,
        card.indicator,
        point.value if point else None,
        unit if point else None,
        point.time if point else None,
        card.summary,
        "; ".join(s.label for s in card.suggestions),
    )


def cytopenia_rows(chart: Chart, as_of: datetime, fever_lookback_hours: float | None = None) -> list[Row]:
    """The cytopenia-review hook's own answer (one card per problem, each order once), a row per card; a
    data-gap card is not a worklist row."""
    service = cytopenia_review.SERVICE
    patient_id = chart.patient_id
    data = chart.hook_data(service)
    call = HookCall(
        "patient-view",
        "screen",
        {"patientId": patient_id},
        data,
        as_of,
        SimpleNamespace(fever_lookback_hours=fever_lookback_hours),  # type: ignore[arg-type]  # the one setting read
    )
    cards, assessment = cytopenia_review.review_with_assessment(call)
    findings = {f.kind.value: f for f in assessment.findings}
    rows = []
    for card in cards:
        if card.finding == "data_gap":
            continue
        finding = findings.get(card.finding or "")
        point = finding.latest if finding else None
        unit = point.evidence[0].unit if point and not point.derivation else "10*9/L"
        grade = finding.grade_number if finding else None
        rows.append(_row(patient_id, service.id, card.finding or "", card, point, unit, grade))
    return rows


def febrile_neutropenia_rows(chart: Chart, as_of: datetime, lookback_hours: float | None = None) -> list[Row]:
    """Every febrile-neutropenia card except 'not assessed: no ANC and no temperature', a data gap."""
    service = febrile_neutropenia.SERVICE
    patient_id = chart.patient_id
    data = chart.hook_data(service)
    record = read_record(data.first("patient", "Patient"), data.resources(*data.by_key), patient_id, data.issues)
    a = fn.assess(record, as_of, lookback_hours, conditions_available=True)
    if a.state is fn.FnState.NOT_EXCLUDED and not a.neutrophils.current:
        return []
    cards = febrile_neutropenia_cards(a, patient_id, None)
    return [_row(patient_id, service.id, a.state.value, card, a.neutrophils.latest) for card in cards]


def order_rows(chart: Chart, as_of: datetime) -> list[Row]:
    drafts = read_draft_orders(renewal_bundle(chart.by_type.get("MedicationRequest", ())))
    if not any(d.medication for d in drafts):
        return []
    patient_id = chart.patient_id
    data = chart.hook_data(ORDER_SIGN)
    record = read_record(data.first("patient", "Patient"), data.resources(*data.by_key), patient_id, data.issues)
    alerts = check_orders(drafts, patient_state(record, as_of, drafts, {}))
    cards = order_cards(alerts, patient_id, None, record.issues)
    return [
        _row(patient_id, ORDER_SIGN.id, alert.rule, card, alert.evidence[0].point if alert.evidence else None)
        for alert, card in zip(alerts, cards, strict=True)
    ]


def held_order_rows(chart: Chart, as_of: datetime) -> list[Row]:
    patient_id = chart.patient_id
    record = read_record(None, chart.by_type.get("MedicationRequest", ()), patient_id)
    return [
        Row(patient_id, "screen", "tki_held_not_restarted", None, "info", None, None, h.since, h.why, h.action)
        for h in held_tki_orders(record, as_of)
    ]


def screen_patient(
    patient_id: str, resources: list[Json], as_of: datetime, fever_lookback_hours: float | None = None
) -> list[Row]:
    """Every worklist row for one patient; the look-back is the site's `fever_lookback_hours`, as in the hook."""
    chart = Chart(patient_id, resources)
    return [
        *cytopenia_rows(chart, as_of, fever_lookback_hours),
        *febrile_neutropenia_rows(chart, as_of, fever_lookback_hours),
        *order_rows(chart, as_of),
        *held_order_rows(chart, as_of),
    ]
