"""The services this server hosts. Discovery and dispatch are generated from this tuple."""

from collections.abc import Sequence

from cds_service.config import Settings
from cds_service.hooks import cytopenia_review, febrile_neutropenia, order_safety
from cds_service.hooks.service import CdsService

SERVICES: tuple[CdsService, ...] = (cytopenia_review.SERVICE, febrile_neutropenia.SERVICE, *order_safety.SERVICES)


def find(service_id: str, services: Sequence[CdsService] = SERVICES) -> list[CdsService]:
    """All declarations under one id (the spec lets one id serve several hooks)."""
    return [s for s in services if s.id == service_id]


def enabled_services(settings: Settings, services: Sequence[CdsService] = SERVICES) -> list[CdsService]:
    """The declared services this site switched on: all of them unless `services_enabled` names some."""
    if settings.services_enabled is None:
        return list(services)
    return [s for s in services if s.id in settings.services_enabled]
