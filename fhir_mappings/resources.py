"""Tolerant access to the resources inside whatever a client sent (Bundle or bare resource)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cds_service.request import Json


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
