"""Card sources, citations and override reasons, loaded from `cards/data`.

Citations live in the data: `citations.csv` gives each guideline its short name and public URL,
`card_sources.csv` says which guidelines each card rests on. A card names them by short name and
links them; file names, section numbers and tracker references never reach a clinician.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cards.model import Coding, Link, Source
from cds_service.knowledge_tables import knowledge_loader, read_table

OVERRIDE_REASON_SYSTEM = "urn:cytopenia-cds:override-reason"
SERVICE_LABEL = "cytopenia-cds"


@dataclass(frozen=True, slots=True)
class Citation:
    short_name: str
    url: str | None


@knowledge_loader
def citations() -> dict[str, Citation]:
    return {r["citation"]: Citation(r["short_name"], r["url"] or None) for r in read_table("cards", "citations.csv")}


@knowledge_loader
def _card_sources() -> dict[str, tuple[Citation, ...]]:
    """Finding -> the guidelines its card rests on; an unknown citation id stops the start."""
    return {
        r["finding"]: tuple(citations()[c] for c in r["citations"].split(";"))
        for r in read_table("cards", "card_sources.csv")
    }


def card_citations(finding: str) -> tuple[Citation, ...]:
    return _card_sources()[finding]


@cache
def card_source(finding: str) -> Source:
    cited = card_citations(finding)
    url = next((c.url for c in cited if c.url), None)
    return Source(label=f"{SERVICE_LABEL}: {'; '.join(c.short_name for c in cited)}", url=url)


@cache
def card_links(finding: str) -> tuple[Link, ...]:
    """One link per cited guideline that has a public page."""
    return tuple(Link(c.short_name, c.url) for c in card_citations(finding) if c.url)


@knowledge_loader
def override_reasons() -> tuple[Coding, ...]:
    return tuple(
        Coding(OVERRIDE_REASON_SYSTEM, row["code"], row["display"])
        for row in read_table("cards", "override_reasons.csv")
    )
