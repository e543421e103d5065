"""The services this server hosts. Discovery and dispatch are generated from this tuple."""

from cds_service.hooks import cytopenia_review, febrile_neutropenia, order_safety
from cds_service.hooks.service import CdsService

SERVICES: tuple[CdsService, ...] = (cytopenia_review.SERVICE, febrile_neutropenia.SERVICE, *order_safety.SERVICES)


def find(service_id: str) -> list[CdsService]:
    """All declarations under one id (the spec lets one id serve several hooks)."""
    return [s for s in SERVICES if s.id == service_id]


def enabled_services(settings) -> list[CdsService]:
    """The services discovery lists: those listed by default unless `services_enabled` names the ones to list."""
    if settings.services_enabled is None:
        return [s for s in SERVICES if s.listed_by_default]
    return [s for s in SERVICES if s.id in settings.services_enabled]


def answering_services(settings) -> list[CdsService]:
    """The services that answer calls: every declared one unless `services_enabled` names some. An opt-in
    service keeps answering while unlisted, so an EHR that registered it is never left without an answer."""
    if settings.services_enabled is None:
        return list(SERVICES)
    return enabled_services(settings)
