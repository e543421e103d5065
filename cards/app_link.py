"""The `smart` link that opens the cytopenia review app from a card, with what the card was about."""

from __future__ import annotations

import json
from dataclasses import replace

from cards.model import Card, Link

LABEL = "Open the cytopenia review app: count trend, MASCC, first hour"


def with_app_link(card: Card, launch_url: str | None, finding: str) -> Card:
    """The card with a link to the app's launch URL. `appContext` names the finding, never the patient:
    the EHR supplies the patient, and the app works without `appContext` (several EHRs drop it)."""
    if launch_url is None:
        return card
    link = Link(LABEL, launch_url, "smart", json.dumps({"finding": finding}, separators=(",", ":")))
    return replace(card, links=(*card.links, link))
