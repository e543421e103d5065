"""Card quality over the corpus, the example requests and the clinical vignettes: what a clinician sees.

`make card-quality` prints, per patient-view service and overall: cards per chart opening (median,
max), orders offered on more than one card of one response, summary and detail lengths (median, p95,
max) and any forbidden string. `tests/test_card_quality.py` fails when a limit is broken.

Limits: summary < 140 characters (CDS Hooks 2.0); detail <= 700 characters for info and warning
cards, <= 1,500 for critical ones (`cards.model.DETAIL_MAX`); at most 3 cards per chart opening from
the services discovery lists by default; no order offered twice in one response; no internal
reference (section signs, tracker numbers, file names, commit hashes, source tags) in any text.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import statistics
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cards.model import DETAIL_MAX, SUMMARY_MAX
from cds_service.app import create_app
from cds_service.config import Settings
from fhir_mappings.times import parse_datetime
from tests import fn_vignettes as fv
from tests import test_corpus as corpus
from tests.conftest import AS_OF, EXAMPLES

DEFAULT_SERVICE = "cytopenia-review"
OPT_IN_SERVICE = "febrile-neutropenia"
PATIENT_VIEW_SERVICES = (DEFAULT_SERVICE, OPT_IN_SERVICE)
ORDER_HOOKS = ("order-select", "order-sign")
MAX_CARDS_PER_OPENING = 3
FORBIDDEN = {
    "section sign": re.compile("§"),
    "tracker reference": re.compile(r"issue\s*#", re.IGNORECASE),
    "file name": re.compile(r"\.(csv|txt|py|json)\b"),
    "knowledge file": re.compile("clinical-knowledge"),
    "commit hash": re.compile(r"@[0-9a-f]{7,40}\b"),
    "source tag": re.compile(r"\b(S\d{1,2}|V[123]|UNVERIFIED)\b"),
}
TEXT_KEYS = ("summary", "detail", "label", "description", "text")
VITAL_CODES = {"8310-5", "8331-1", "29463-7", "85354-9"}


@dataclass(frozen=True, slots=True)
class Opening:
    """One chart opening: a patient-view request and the moment it is evaluated at."""

    name: str
    body: dict
    as_of: datetime


@dataclass
class ServiceFigures:
    cards_per_opening: list[int] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    summaries: list[int] = field(default_factory=list)
    details: dict[str, list[int]] = field(default_factory=lambda: {"info/warning": [], "critical": []})
    forbidden: list[str] = field(default_factory=list)
    over_limit: list[str] = field(default_factory=list)
    too_many: list[str] = field(default_factory=list)


def _texts(document, key: str = "") -> Iterator[str]:
    if isinstance(document, dict):
        for k, v in document.items():
            yield from _texts(v, k)
    elif isinstance(document, list):
        for item in document:
            yield from _texts(item, key)
    elif isinstance(document, str) and key in TEXT_KEYS:
        yield document


def _orders(card: dict) -> set[str]:
    """What the card's suggestions would draft, by the order's own text."""
    found = set()
    for suggestion in card.get("suggestions", ()):
        for action in suggestion.get("actions", ()):
            resource = action.get("resource") or {}
            concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
            if concept.get("text"):
                found.add(concept["text"])
    return found


def check_cards(name: str, cards: list[dict], figures: ServiceFigures, limit_cards: bool) -> None:
    """Add one response's cards to the figures, noting every broken limit by opening name."""
    figures.cards_per_opening.append(len(cards))
    if limit_cards and len(cards) > MAX_CARDS_PER_OPENING:
        figures.too_many.append(f"{name}: {len(cards)} cards")
    seen: dict[str, int] = {}
    for card in cards:
        for order in _orders(card):
            seen[order] = seen.get(order, 0) + 1
        summary, detail = card["summary"], card.get("detail", "")
        figures.summaries.append(len(summary))
        kind = "critical" if card["indicator"] == "critical" else "info/warning"
        figures.details[kind].append(len(detail))
        if len(summary) > SUMMARY_MAX:
            figures.over_limit.append(f"{name}: summary {len(summary)} > {SUMMARY_MAX}: {summary}")
        if len(detail) > DETAIL_MAX[card["indicator"]]:
            figures.over_limit.append(f"{name}: {card['indicator']} detail {len(detail)}: {summary}")
        for text in _texts(card):
            for what, pattern in FORBIDDEN.items():
                if match := pattern.search(text):
                    figures.forbidden.append(f"{name}: {what} {match.group(0)!r} in {text[:80]!r}")
    figures.repeated += [f"{name}: {order} on {n} cards" for order, n in seen.items() if n > 1]


def _percentile(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0


def spread(values: list[int]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):g} / {_percentile(values, 95)} / {max(values)}"


# --- the openings ---------------------------------------------------------------------------


def _split_for_opt_in(body: dict) -> dict:
    """The same chart as the opt-in service's prefetch keys: vitals apart, counts as 'neutrophils'."""
    prefetch = body["prefetch"]
    observations = [
        e["resource"]
        for key in ("bloodCounts", "vitals")
        for e in (prefetch.get(key) or {}).get("entry", ())
        if e["resource"].get("resourceType") == "Observation"
    ]

    def is_vital(o: dict) -> bool:
        return bool({c.get("code") for c in o.get("code", {}).get("coding", ())} & VITAL_CODES)

    converted = {k: v for k, v in prefetch.items() if k not in ("bloodCounts", "vitals")}
    converted["vitals"] = corpus.searchset([o for o in observations if is_vital(o)])
    converted["neutrophils"] = corpus.searchset([o for o in observations if not is_vital(o)])
    return {**body, "prefetch": converted}


def _from_fn_vignette(body: dict) -> dict:
    """A febrile-neutropenia vignette as the complete service's prefetch: counts and vitals apart."""
    prefetch = dict(body["prefetch"])
    observations = [e["resource"] for k in ("neutrophils", "vitals") for e in prefetch.pop(k, {}).get("entry", ())]
    vitals = [o for o in observations if o["code"]["coding"][0]["code"] in VITAL_CODES]
    prefetch["vitals"] = fv.bundle(vitals)
    prefetch["bloodCounts"] = fv.bundle([o for o in observations if o not in vitals])
    return {**body, "prefetch": prefetch}


def worst_patient() -> dict:
    """Febrile, pancytopenic and on clozapine: the patient who got 8 cards before issue 13."""
    counts = [
        fv.anc(0.3, 2),
        fv.observation("6690-2", 1.1, "10*9/L", 120),
        fv.observation("718-7", 7.9, "g/dL", 120),
        fv.observation("777-3", 42, "10*9/L", 120),
        fv.observation("731-0", 0.4, "10*9/L", 120),
    ]
    return _from_fn_vignette(
        fv.request(
            fv.temp(38.6, 30),
            fv.temp(38.4, 90),
            fv.bp(118),
            fv.weight(72),
            *counts,
            fv.medication("2626", "clozapine 100 MG Oral Tablet"),
            fv.SOLID_TUMOUR,
            fv.encounter("EMER", 120),
        )
    )


def openings() -> Iterator[Opening]:
    for row in corpus.synthea_rows():
        body = corpus.synthea_request(row)
        if row["category"].startswith("H_"):
            items = corpus.resources(corpus.bundle_path(row))
            last = max(
                parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900")
                for o in corpus.of_type(items, "Observation")
            )
            yield Opening(f"synthea {row['name']} (no CBC)", body, last)
            continue
        last_cbc = corpus.cbc_times(row)[-1][0]
        yield Opening(f"synthea {row['name']} at its last CBC", body, last_cbc)
        yield Opening(f"synthea {row['name']} a year later", body, last_cbc + timedelta(days=365))
    for bundle in ("Bundle-101.json", "Bundle-ghp.json"):
        [patient] = corpus.hl7("Patient-pat2.json")
        observations = [r for r in corpus.hl7(bundle) if r.get("resourceType") in ("Observation", "DiagnosticReport")]
        as_of = max(parse_datetime(o.get("effectiveDateTime")) or parse_datetime("1900") for o in observations)
        yield Opening(f"FHIR example pat2 {bundle}", corpus.request(patient, observations), as_of)
    for path in sorted(EXAMPLES.glob("patient-view-*.json")):
        yield Opening(f"example {path.name}", json.loads(path.read_text(encoding="utf-8")), AS_OF)
    from tests.test_febrile_neutropenia_vignettes import VIGNETTES

    for vignette in VIGNETTES:
        yield Opening(f"vignette {vignette[0]}", _from_fn_vignette(fv.request(*vignette[2])), AS_OF)
    yield Opening("worst patient (febrile, pancytopenic, on clozapine)", worst_patient(), AS_OF)


def order_calls() -> Iterator[tuple[str, object]]:
    """Drafted myelotoxic drugs and neutropenia antibiotics against counts low, normal, old and missing:
    (name, build(hook) -> request)."""
    from tests import test_order_safety_http as orders

    drafts = {
        "clozapine": orders.medication("d-cloz", "2626"),
        "imatinib": orders.medication("d-imat", "282388"),
        "methimazole": orders.medication("d-methi", "6835"),
        "cyclophosphamide": orders.medication("d-cyclo", "3002"),
        "filgrastim": orders.medication("d-filg", "68442"),
        "vancomycin": orders.medication("d-vanc", "11124"),
    }
    counts = {
        "ANC 0.3, platelets 40": [orders.anc(0.3), orders.platelets(40)],
        "ANC 0.8": [orders.anc(0.8)],
        "ANC 2.5 (30 days old)": [orders.anc(2.5, days_ago=30)],
        "no counts": [],
    }
    on_clozapine = orders.medication("cloz-active", "2626", status="active", authored_days_ago=60)
    for drug, draft in drafts.items():
        for label, results in counts.items():
            meds = [on_clozapine] if drug == "clozapine" else []
            yield (
                f"{drug} drafted, {label}",
                lambda hook, d=draft, r=results, m=meds: orders.request([d], r, m, hook=hook),
            )


# --- the report -----------------------------------------------------------------------------


@dataclass
class Report:
    by_service: dict[str, ServiceFigures]
    per_opening_default: ServiceFigures
    worst: dict[str, list[dict]]

    @property
    def problems(self) -> list[str]:
        found = []
        for figures in [*self.by_service.values(), self.per_opening_default]:
            found += figures.over_limit + figures.forbidden + figures.repeated + figures.too_many
        return sorted(set(found))


def _post(client, service: str, body: dict) -> list[dict]:
    body = copy.deepcopy(body)
    body["hookInstance"] = str(uuid.uuid4())
    response = client.post(f"/cds-services/{service}", json=body)
    if response.status_code != 200:
        raise AssertionError(f"{service}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return response.get_json()["cards"]


def _app(as_of: datetime, settings: dict | None):
    """A development app evaluating at `as_of`, with no repeat hold-back: every opening shows all its cards."""
    return create_app(
        Settings(
            dev=True,
            database_url="sqlite://",
            audit_key="card-quality",
            repeat_window_hours=0,
            log_level="ERROR",
            **(settings or {}),
        ),
        clock=lambda: as_of,
    )


def run(settings: dict | None = None) -> Report:
    by_service = {s: ServiceFigures() for s in PATIENT_VIEW_SERVICES}
    default = ServiceFigures()
    worst: dict[str, list[dict]] = {}
    app, evaluated_at = None, None
    for opening in openings():
        if opening.as_of != evaluated_at:  # one app per moment; openings at the same moment share its store
            with contextlib.redirect_stderr(io.StringIO()):  # the development-mode warning, once per app
                app = _app(opening.as_of, settings)
            evaluated_at = opening.as_of
        client = app.test_client()
        listed = {s["id"] for s in client.get("/cds-services").get_json()["services"]}
        shown = []
        for service in PATIENT_VIEW_SERVICES:
            body = opening.body if service == DEFAULT_SERVICE else _split_for_opt_in(opening.body)
            cards = _post(client, service, body)
            check_cards(opening.name, cards, by_service[service], limit_cards=False)
            if service in listed:
                shown += cards
            if opening.name.startswith("worst"):
                worst[service] = cards
        check_cards(opening.name, shown, default, limit_cards=True)
    with contextlib.redirect_stderr(io.StringIO()):
        app = _app(AS_OF, settings)
    client = app.test_client()
    for service in client.get("/cds-services").get_json()["services"]:
        if service["hook"] in ORDER_HOOKS:
            figures = by_service.setdefault(f"{service['id']} ({service['hook']})", ServiceFigures())
            for name, build in order_calls():
                cards = _post(client, service["id"], build(service["hook"]))
                check_cards(f"{service['hook']}: {name}", cards, figures, limit_cards=False)
    return Report(by_service, default, worst)


def render(report: Report) -> str:
    lines = [
        "| Service | Calls | Cards per call (median / max) | Orders repeated in a response | "
        "Summary chars (median / p95 / max) | Info+warning detail chars (median / p95 / max) | "
        "Critical detail chars (median / p95 / max) | Forbidden strings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [*report.by_service.items(), ("all services listed by default", report.per_opening_default)]
    for name, f in rows:
        per = f.cards_per_opening
        lines.append(
            f"| {name} | {len(per)} | {statistics.median(per):g} / {max(per)} | {len(f.repeated)} | "
            f"{spread(f.summaries)} | {spread(f.details['info/warning'])} | {spread(f.details['critical'])} | "
            f"{len(f.forbidden)} |"
        )
    lines.append("")
    for service, cards in report.worst.items():
        lines.append(f"Worst patient, {service}: {len(cards)} cards")
        lines += [f"  - {c['indicator']}: {c['summary']} ({len(c.get('detail', ''))} chars)" for c in cards]
    problems = report.problems
    lines.append("")
    lines.append(f"Limits broken: {len(problems)}")
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def main() -> int:
    report = run()
    print(
        f"Card quality as of {datetime.now(UTC):%Y-%m-%d} (limits: summary < {SUMMARY_MAX + 1}, detail ≤ "
        f"{DETAIL_MAX['info']} info/warning and ≤ {DETAIL_MAX['critical']} critical, ≤ {MAX_CARDS_PER_OPENING} "
        "cards per opening)\n"
    )
    print(render(report))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
