"""CDS Hooks cards, suggestions and the FHIR order resources they carry."""

from cards.model import Action, Card, Coding, Link, Source, Suggestion

__all__ = ["Action", "Card", "Coding", "Link", "Source", "Suggestion"]
