"""Card sources and override reasons, loaded from `cards/data`."""

from __future__ import annotations

from functools import cache

from cards.model import Coding, Source
from cds_service.knowledge_tables import knowledge_loader, read_table

OVERRIDE_REASON_SYSTEM = "urn:cytopenia-cds:override-reason"
SERVICE_LABEL = "cytopenia-cds"


@cache
def card_source(finding: str) -> Source:
    row = next(r for r in read_table("cards", "card_sources.csv") if r["finding"] == finding)
    return Source(label=f"{SERVICE_LABEL}: {row['label']}", url=row["url"])


@knowledge_loader
def override_reasons() -> tuple[Coding, ...]:
    return tuple(
        Coding(OVERRIDE_REASON_SYSTEM, row["code"], row["display"])
        for row in read_table("cards", "override_reasons.csv")
    )
