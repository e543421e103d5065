"""The service's Prometheus metrics, as objects any module can import and increment.

Under gunicorn every worker is its own process, so `cytopenia-cds serve` sets PROMETHEUS_MULTIPROC_DIR
before this module is imported and `/metrics` aggregates the workers' files (prometheus_client
multiprocess mode). Labels carry only bounded vocabularies (service ids, hooks, statuses, finding
kinds, reasons): never a patient, a URL or a token.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from cds_service.issued_card import IssuedCard

disable_created_metrics()  # `_created` series double the exposition and no dashboard here uses them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HOOK_REQUEST_SECONDS = Histogram(
    "cytopenia_hook_request_duration_seconds",
    "Time to answer a CDS Hooks service call, by service, hook and HTTP status",
    ("service", "hook", "status"),
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter("cytopenia_http_requests", "HTTP requests by route and status", ("route", "method", "status"))
CARDS = Counter(
    "cytopenia_cards", "Cards returned, by service, finding and indicator", ("service", "finding", "indicator")
)
FHIR_FETCH_SECONDS = Histogram(
    "cytopenia_fhir_fetch_duration_seconds",
    "Time of one FHIR read from the EHR's server, by resource type",
    ("resource_type",),
    buckets=LATENCY_BUCKETS,
)
FHIR_FETCH_ERRORS = Counter("cytopenia_fhir_fetch_errors", "Failed FHIR reads, by reason", ("reason",))
FHIR_FETCH_TIMEOUTS = Counter(
    "cytopenia_fhir_fetch_timeouts", "FHIR reads that ran out of time, by resource type", ("resource_type",)
)
AUTH_FAILURES = Counter("cytopenia_auth_failures", "Rejected CDS Hooks calls, by reason", ("reason",))
REPLAY_CACHE_FALLBACKS = Counter(
    "cytopenia_replay_cache_fallbacks",
    "Tokens checked against this worker's own replay cache because Redis could not answer (alert on any)",
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "cytopenia_rate_limit_storage_errors", "Calls counted by this worker alone because Redis could not count them"
)
SUPPRESSED_REPEATS = Counter(
    "cytopenia_suppressed_repeats",
    "Cards not repeated because the clinician already saw them, by service",
    ("service",),
)

AUDIT_WRITE_FAILURES = Counter(
    "cytopenia_audit_write_failures",
    "Answered CDS Hooks calls whose audit row could not be written (each one is also logged), by service",
    ("service",),
)


@lru_cache(maxsize=256)
def _cards_counted(service_id: str, finding: str, indicator: str) -> Counter:
    """The labelled child, kept (the labels are bounded vocabularies): `labels()` validates its values and
    looks the child up under a lock at every call."""
    return CARDS.labels(service_id, finding, indicator)


def count_cards(service_id: str, cards: Iterable[IssuedCard]) -> None:
    for card in cards:
        _cards_counted(service_id, card.finding or "other", card.indicator).inc()


def exposition() -> tuple[bytes, str]:
    """The text format for `/metrics`: all workers' samples when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
