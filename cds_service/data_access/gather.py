"""Assemble the data of one hook call: prefetch first, then the EHR's FHIR server under one deadline.

Required data that is neither prefetched nor fetchable means 412 with an OperationOutcome naming it;
optional data that could not be had is named in `HookData.issues`, which the cards print, so a
finding that depends on it is never reported as absent.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from cds_service.auth import Caller
from cds_service.compute_turn import waiting
from cds_service.config import Settings
from cds_service.data_access.fhir_client import Pages, follow_pages, for_this_query, resource_type_of
from cds_service.data_access.fhir_errors import FetchFailed, TimedOut
from cds_service.data_access.fhir_trust import FhirServer, Refused, trusted_server
from cds_service.data_access.prefetch import KeyState, PrefetchResult, read_key
from cds_service.data_access.templates import UnfilledToken, fill
from cds_service.data_access.transport import GuardedTransport, Limits, Transport
from cds_service.observability.metrics import FHIR_FETCH_ERRORS, FHIR_FETCH_SECONDS, FHIR_FETCH_TIMEOUTS
from cds_service.request import DataIssue, HookData, Prefetch, prefetch_source

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FhirAccess:
    """An app's worker threads and pooled connections for reading FHIR servers (built by `create_app`).

    A fetch past its deadline frees its thread within one read timeout, so the pool cannot fill up
    with hung calls.
    """

    executor: ThreadPoolExecutor
    transport: Transport

    @classmethod
    def for_settings(cls, settings: Settings) -> FhirAccess:
        return cls(
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="fhir-fetch"),
            GuardedTransport(allow_private=settings.dev or settings.allow_private_fhir_servers),
        )


UNDATED = datetime.min.replace(tzinfo=UTC)


class RequiredDataUnavailable(Exception):
    """Required data neither prefetched nor fetchable (the HTTP layer answers 412 naming the keys)."""

    def __init__(self, message: str, keys: list[str]):
        super().__init__(message)
        self.message = message
        self.expression = [f"prefetch.{key}" for key in keys]


def gather(
    templates: tuple[Prefetch, ...], request: dict[str, Any], settings: Settings, caller: Caller, access: FhirAccess
) -> HookData:
    started = time.monotonic()
    sent = request.get("prefetch")
    prefetch: dict[str, Any] = sent if isinstance(sent, dict) else {}
    results = {t.key: read_key(t.key, prefetch) for t in templates}
    needs = [
        t for t in templates if results[t.key].state in (KeyState.ABSENT, KeyState.ERROR) or results[t.key].next_page
    ]
    outcomes = _fetch(needs, results, request, settings, caller, access, started) if needs else {}
    fetched = {t.key for t in needs}  # keys are unique: a set lookup, not a dataclass comparison per template
    by_key: dict[str, tuple] = {}
    issues: list[DataIssue] = []
    unavailable: list[Prefetch] = []
    reasons: list[str] = []
    for template in templates:
        result, outcome, source = results[template.key], outcomes.get(template.key), prefetch_source(template.key)
        if template.key not in fetched:
            by_key[template.key] = result.resources
            issues.extend(result.issues)
        elif isinstance(outcome, Pages):
            by_key[template.key] = result.resources + outcome.resources if result.next_page else outcome.resources
            if outcome.incomplete:
                issues.append(DataIssue(source, outcome.incomplete))
        elif result.next_page:
            by_key[template.key] = result.resources
            issues.append(DataIssue(source, f"only the first page was sent; later pages could not be read: {outcome}"))
        else:
            why = "was not prefetched" if result.state is KeyState.ABSENT else "failed in the EHR"
            why = f"{why} and could not be fetched: {outcome}"
            if template.required:
                unavailable.append(template)
                reasons.append(f"'{template.key}' ({_described(template.query)}) {why}")
            else:
                issues.extend(result.issues)
                issues.append(DataIssue(source, f"{why}; findings that depend on it may be incomplete"))
    for key, resources in by_key.items():
        if len(resources) > settings.fhir_max_entries:
            by_key[key] = newest(resources, settings.fhir_max_entries)
            issues.append(
                DataIssue(
                    prefetch_source(key),
                    f"{len(resources)} entries were sent; only the newest {settings.fhir_max_entries} were read",
                )
            )
    if unavailable:
        raise RequiredDataUnavailable(
            "required FHIR data could not be obtained: " + "; ".join(reasons), [t.key for t in unavailable]
        )
    return HookData(by_key=by_key, issues=tuple(issues))


# When a resource was true of the patient, by type: the first of these it has decides its place in time.
TIMES = (
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "issued",
    "authoredOn",
    "recordedDate",
    "onsetDateTime",
)


PARTIAL_DATES = {4: "-01-01", 7: "-01"}  # FHIR allows "2026" and "2026-11"


def _moment(value: Any) -> datetime | None:
    text = value.get("start") if isinstance(value, dict) else value
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text + PARTIAL_DATES.get(len(text), ""))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(resource: dict[str, Any]) -> datetime:
    return next((m for name in TIMES if (m := _moment(resource.get(name))) is not None), UNDATED)


def newest(resources: tuple, count: int) -> tuple:
    """The `count` most recent resources (undated ones last): a long stay's chart beyond what one call
    reads keeps its latest results, and the card says how many were left out."""
    return tuple(sorted(resources, key=_time, reverse=True)[:count])


def _described(query: str) -> str:
    path, searched, _ = query.partition("?")
    return f"{path} search" if searched else f"{path.split('/')[0]} read"


def _fetch(
    needs: list[Prefetch],
    results: dict[str, PrefetchResult],
    request: dict[str, Any],
    settings: Settings,
    caller: Caller,
    access: FhirAccess,
    started: float,
) -> dict[str, Pages | str]:
    """Fetch every key still needed, in parallel; a key's value is its Pages or why it failed."""
    try:
        server = trusted_server(request, settings, caller)
    except Refused as refused:
        FHIR_FETCH_ERRORS.labels("refused").inc(len(needs))
        return {t.key: str(refused) for t in needs}
    limits = Limits.from_settings(settings, started)
    outcomes: dict[str, Pages | str] = {}
    futures = {}
    for template in needs:
        try:
            query = fill(template.query, request.get("context") or {})
        except UnfilledToken as unfilled:
            FHIR_FETCH_ERRORS.labels("unfillable_query").inc()
            outcomes[template.key] = f"the query cannot be made ({unfilled})"
            continue
        futures[template.key] = access.executor.submit(
            _pages, server, query, results[template.key], limits, access.transport
        )
    with waiting():
        done, _ = wait(futures.values(), timeout=max(0.0, limits.deadline - time.monotonic()))
    for key, future in futures.items():
        resource_type = next(resource_type_of(t.query) for t in needs if t.key == key)
        try:
            if future not in done:
                future.cancel()
                raise TimedOut(limits.deadline_ms)
            outcomes[key] = future.result()
        except TimedOut as timed_out:
            FHIR_FETCH_TIMEOUTS.labels(resource_type).inc()
            outcomes[key] = str(timed_out)
        except FetchFailed as failed:
            FHIR_FETCH_ERRORS.labels(failed.reason).inc()
            outcomes[key] = str(failed)
        except Exception:  # a defect must cost this key, not the whole call (and never log URLs or tokens)
            FHIR_FETCH_ERRORS.labels("defect").inc()
            log.exception("reading FHIR data for prefetch key %s failed unexpectedly", key)
            outcomes[key] = "the answer could not be read"
        if isinstance(outcomes[key], str):
            log.info(
                "FHIR data for prefetch key %s not obtained after %.0f ms", key, (time.monotonic() - started) * 1000
            )
    return outcomes


def _pages(server: FhirServer, query: str, prefetched: PrefetchResult, limits: Limits, transport: Transport) -> Pages:
    """The rest of a paginated prefetch, or the whole query; only what the query asked for is kept."""
    if prefetched.next_page:
        url, pages_read = urljoin(f"{server.base}/", prefetched.next_page), 1
    else:
        url, pages_read = f"{server.base}/{query}", 0
    with FHIR_FETCH_SECONDS.labels(resource_type_of(query)).time():
        pages = follow_pages(server, url, limits, transport, pages_read)
    return Pages(for_this_query(pages.resources, query), pages.incomplete)
