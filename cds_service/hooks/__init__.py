"""The services this server hosts. Discovery and dispatch are generated from this tuple."""

from collections.abc import Sequence

from cds_service.config import Settings
from cds_service.hooks import cytopenia_review, febrile_neutropenia, order_safety
from cds_service.hooks.service import CdsService

SERVICES: tuple[CdsService, ...] = (cytopenia_review.SERVICE, febrile_neutropenia.SERVICE, *order_safety.SERVICES)
# Ids that still answer during their deprecation period but are no longer listed in discovery, with the
# ids that replaced them (CHANGELOG.md says when each goes).
RETIRED_IDS: dict[str, tuple[str, ...]] = {order_safety.RETIRED_ID: tuple(order_safety.SERVICE_IDS.values())}


def current_ids(service_id: str) -> tuple[str, ...]:
    """The listed ids a called id stands for: itself, or what replaced it."""
    return RETIRED_IDS.get(service_id, (service_id,))


def find(service_id: str, services: Sequence[CdsService] = SERVICES) -> list[CdsService]:
    """All declarations a called id reaches (a retired id reaches every declaration that replaced it)."""
    ids = current_ids(service_id)
    return [s for s in services if s.id in ids]


def enabled_services(settings: Settings, services: Sequence[CdsService] = SERVICES) -> list[CdsService]:
    """The services discovery lists: those listed by default unless `services_enabled` names the ones to list."""
    if settings.services_enabled is None:
        return [s for s in services if s.listed_by_default]
    enabled = {i for name in settings.services_enabled for i in current_ids(name)}
    return [s for s in services if s.id in enabled]


def answering_services(settings: Settings, services: Sequence[CdsService] = SERVICES) -> list[CdsService]:
    """The services that answer calls: every declared one unless `services_enabled` names some. An opt-in
    service keeps answering while unlisted, so an EHR that registered it is never left without an answer."""
    if settings.services_enabled is None:
        return list(services)
    return enabled_services(settings, services)
