"""How a CDS service is declared: once, with everything discovery and dispatch need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cards import Card
from cds_service.request import HookCall, Json, Prefetch

REPORTS = Prefetch("reports", "DiagnosticReport?patient={{context.patientId}}&_sort=-date&_count=50")
"""The reports that group the results: an Observation without its own time takes its report's time.
Optional and quiet: when it cannot be had, only the results that needed its time are said to be unusable."""


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

    @property
    def smart_scopes(self) -> tuple[str, ...]:
        """SMART App Launch 1.0 scopes (CDS Hooks 2.0) the FHIR fallback needs: it runs exactly the
        prefetch templates, so read access to each resource type they name."""
        types = {p.query.partition("?")[0].partition("/")[0] for p in self.prefetch}
        return tuple(f"patient/{t}.read" for t in sorted(types))

    def discovery(self) -> Json:
        entry: Json = {"hook": self.hook, "id": self.id, "title": self.title, "description": self.description}
        if self.prefetch:
            entry["prefetch"] = {p.key: p.query for p in self.prefetch}
        usage = [self.usage_requirements] if self.usage_requirements else []
        if self.smart_scopes:
            usage.append(f"Without prefetch, the FHIR fallback needs the SMART scopes {' '.join(self.smart_scopes)}.")
        if usage:
            entry["usageRequirements"] = " ".join(usage)
        return entry
