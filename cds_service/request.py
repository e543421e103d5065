"""The CDS Hooks request as the service receives it: its FHIR payload read tolerantly, the prefetch
templates, the data of one call and what could not be used.

The lowest layer of the flow (request -> trust -> data access -> facts -> clinical -> cards ->
response): it imports nothing above it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.config import Settings

Json = dict[str, Any]


class InvalidRequest(Exception):
    """The call cannot be evaluated as sent (the HTTP layer answers 400 with an OperationOutcome)."""

    def __init__(self, message: str, expression: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.expression = expression


@dataclass(frozen=True, slots=True)
class DataIssue:
    """Something in the input that could not be used, said plainly for the card."""

    source: str
    problem: str


def resources_in(payload: Any) -> Iterator[Json]:
    """Yield the resources in a Bundle of any `type` (or none), or the payload itself.

    Clients send searchset, collection and transaction Bundles, and Bundles without `type`
    (the CDS Hooks Sandbox does); all carry their resources the same way.
    """
    if not isinstance(payload, dict):
        return
    if payload.get("resourceType") != "Bundle":
        yield payload
        return
    for entry in payload.get("entry") or ():
        if isinstance(entry, dict):
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            if resource.get("resourceType") == "Bundle":
                yield from resources_in(resource)
            else:
                yield resource


def reference_of(resource: Json) -> str:
    return f"{resource.get('resourceType', 'Resource')}/{resource.get('id', '?')}"


def operation_outcome_issues(resource: Json) -> list[DataIssue]:
    """The errors an OperationOutcome reports; warnings and information (search notes) are not errors."""
    issues = []
    for issue in resource.get("issue") or ():
        if not isinstance(issue, dict) or issue.get("severity") not in ("error", "fatal"):
            continue
        details = issue.get("details") or {}
        text = details.get("text") if isinstance(details, dict) else None
        problem = text or issue.get("diagnostics") or issue.get("code") or "error reported by the EHR"
        issues.append(DataIssue(reference_of(resource), f"the EHR reported an error: {str(problem)[:200]}"))
    return issues


@dataclass(frozen=True, slots=True)
class Prefetch:
    """A prefetch template; `required` data missing and unobtainable means 412."""

    key: str
    query: str
    required: bool = False


def prefetch_source(key: str) -> str:
    """How a DataIssue names the prefetch key (or fetch) it concerns."""
    return f"prefetch '{key}'"


@dataclass(frozen=True, slots=True)
class HookData:
    """The FHIR data for one call, whatever route it came by, with what could not be had."""

    by_key: Mapping[str, tuple[Json, ...]]
    issues: tuple[DataIssue, ...] = ()

    def resources(self, *keys: str) -> tuple[Json, ...]:
        return tuple(r for key in (keys or self.by_key) for r in self.by_key.get(key, ()))

    def issues_about(self, *keys: str) -> tuple[DataIssue, ...]:
        sources = {prefetch_source(key) for key in keys}
        return tuple(issue for issue in self.issues if issue.source in sources)

    def issues_except(self, *keys: str) -> tuple[DataIssue, ...]:
        """Issues other than those about `keys`, for handlers that report those keys their own way."""
        about = self.issues_about(*keys)
        return tuple(issue for issue in self.issues if issue not in about)

    def first(self, key: str, resource_type: str) -> Json | None:
        return next((r for r in self.by_key.get(key, ()) if r.get("resourceType") == resource_type), None)


@dataclass(frozen=True, slots=True)
class HookCall:
    """A validated CDS Hooks request plus its data and the moment it is evaluated at."""

    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    data: HookData
    as_of: datetime
    settings: Settings | None = None
    app_launch_url: str | None = None  # the SMART app's launch URL, for the cards' `smart` links

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def encounter_id(self) -> str | None:
        return self.context.get("encounterId")
