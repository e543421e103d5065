"""How a CDS service is declared: once, with everything discovery and dispatch need."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cards import Card
from cds_service.config import Settings
from fhir_mappings import DataIssue

Json = dict[str, Any]


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

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]

    @property
    def encounter_id(self) -> str | None:
        return self.context.get("encounterId")


@dataclass(frozen=True, slots=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str
    handler: Callable[[HookCall], list[Card]]
    prefetch: tuple[Prefetch, ...] = ()
    usage_requirements: str | None = None
    listed_by_default: bool = True  # False: an opt-in alternative, listed only when a site enables it by name

    def discovery(self) -> Json:
        entry: Json = {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description}
        if self.prefetch:
            entry["prefetch"] = {p.key: p.query for p in self.prefetch}
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry
