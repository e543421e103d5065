"""Tolerant access to the resources inside whatever a client sent (Bundle or bare resource)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_mappings.facts import DataIssue

Json = dict[str, Any]


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
            if isinstance(resource, dict):
                yield from resources_in(resource) if resource.get("resourceType") == "Bundle" else (resource,)


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


def codings(concept: Any) -> Iterator[Json]:
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict):
                yield coding


def concept_text(concept: Any) -> str | None:
    """Human text of a CodeableConcept with stray zero-width characters removed."""
    if not isinstance(concept, dict):
        return None
    text = concept.get("text")
    if not text:
        text = next((c.get("display") for c in codings(concept) if c.get("display")), None)
    return clean_text(text) if isinstance(text, str) else None


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def clean_text(text: str) -> str:
    return text.translate(_INVISIBLE).strip()
