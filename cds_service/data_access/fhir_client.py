"""Reading FHIR data from the EHR's server: one document (same-origin redirects, statuses, FHIR JSON),
then a query's pages, then only what the query asked for.

Trust binding is in `fhir_trust`, the guarded GET in `transport`, the failures in `fhir_errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urljoin

import orjson

from cds_service.data_access.fhir_errors import NotFhir, Redirected, ServerError, TokenRefused
from cds_service.data_access.fhir_trust import FhirServer
from cds_service.data_access.prefetch import next_link
from cds_service.data_access.transport import Limits, Transport
from cds_service.request import Json, operation_outcome_issues, resources_in

FHIR_JSON = ("application/fhir+json", "application/json", "application/json+fhir")
MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class Pages:
    """What paging brought: resources in server order, and why it stopped early (if it did)."""

    resources: tuple[Json, ...]
    incomplete: str | None = None


def _problem_in(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        problems = [i.problem.removeprefix("the EHR reported an error: ") for i in operation_outcome_issues(document)]
        return f": {'; '.join(problems)[:200]}" if problems else ""
    return ""


def get_json(server: FhirServer, url: str, limits: Limits, transport: Transport, budget: int) -> tuple[Json, int]:
    """GET one FHIR document from the server (same-origin redirects only); returns it and its size."""
    for _ in range(MAX_REDIRECTS + 1):
        answer = transport.get(url, server.headers(), limits, budget)
        if answer.location is not None:
            url = urljoin(url, answer.location)
            if not server.owns(url):
                raise Redirected("the FHIR server redirected to another host; not followed")
            continue
        if answer.status in (401, 403):
            raise TokenRefused(answer.status, token_sent=server.token is not None)
        if answer.status != 200:
            raise ServerError(f"the FHIR server answered HTTP {answer.status}{_problem_in(answer.body)}")
        if answer.content_type not in FHIR_JSON:
            raise NotFhir(f"the FHIR server answered with {answer.content_type or 'no content type'}, not FHIR JSON")
        try:
            document = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise NotFhir("the FHIR server answered with malformed JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise NotFhir("the FHIR server answered with something that is not a FHIR resource")
        return document, len(answer.body)
    raise Redirected("the FHIR server redirected too often")


def errors_in(document: Json) -> list[str]:
    """The error OperationOutcomes in a resource or Bundle (warnings such as search notes are not errors)."""
    return [
        issue.problem
        for resource in resources_in(document)
        if resource.get("resourceType") == "OperationOutcome"
        for issue in operation_outcome_issues(resource)
    ]


def follow_pages(
    server: FhirServer, url: str | None, limits: Limits, transport: Transport, pages_read: int = 0
) -> Pages:
    """Read `url` and its `next` links within the page, entry and byte limits (pages_read: already spent)."""
    resources: list[Json] = []
    budget = limits.bytes
    while url:
        if not server.owns(url):
            return Pages(tuple(resources), "a next link points to another host; later pages were not read")
        if pages_read >= limits.pages:
            return Pages(tuple(resources), f"more than {limits.pages} pages of results; later pages were not read")
        document, size = get_json(server, url, limits, transport, budget)
        budget -= size
        pages_read += 1
        if problems := errors_in(document):
            raise ServerError("; ".join(problems)[:300])
        resources.extend(r for r in resources_in(document) if r.get("resourceType") != "OperationOutcome")
        if len(resources) > limits.entries:
            return Pages(
                tuple(resources[: limits.entries]), f"more than {limits.entries} results; the rest were not read"
            )
        url = next_link(document)
    return Pages(tuple(resources))


def resource_type_of(query: str) -> str:
    """`Observation` for `Observation?patient=...`, `Patient` for `Patient/123`."""
    return query.partition("?")[0].partition("/")[0]


def for_this_query(resources: tuple[Json, ...], query: str) -> tuple[Json, ...]:
    """Keep what the query asked for: servers may ignore parameters they do not know, so check ourselves."""
    path, _, search = query.partition("?")
    resource_type, resource_id = resource_type_of(query), path.partition("/")[2]
    kept = [
        r
        for r in resources
        if r.get("resourceType") == resource_type and (not resource_id or r.get("id") == resource_id)
    ]
    params = dict(parse_qsl(search))
    if patient := params.get("patient"):
        kept = [r for r in kept if _refers_to(r, f"Patient/{patient.removeprefix('Patient/')}")]
    if codes := params.get("code"):
        wanted = {_system_and_code(c) for c in codes.split(",")}
        kept = [r for r in kept if _has_code(r, wanted)]
    return tuple(kept)


def _refers_to(resource: Json, reference: str) -> bool:
    for element in ("subject", "patient"):
        value = resource.get(element)
        target = value.get("reference") if isinstance(value, dict) else None
        if isinstance(target, str) and (target == reference or target.endswith(f"/{reference}")):
            return True
    return False


def _system_and_code(token: str) -> tuple[str | None, str]:
    """A FHIR token search value: `system|code`, or a bare code matching any system."""
    system, bar, code = token.partition("|")
    return (system, code) if bar else (None, token)


def _has_code(resource: Json, wanted: set[tuple[str | None, str]]) -> bool:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings or ():
        if isinstance(coding, dict) and (
            (coding.get("system"), coding.get("code")) in wanted or (None, coding.get("code")) in wanted
        ):
            return True
    return False
