"""How a CDS service is declared: once, with everything discovery and dispatch need."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cards import Card
from cds_service.request import HookCall, Json, Prefetch


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
