"""What the audit trail, alert-fatigue state and metrics keep of a card: never its text.

Storage and metrics sit beside the flow of a call, so they take this record rather than the card model
(`cards.Card`), which belongs to the presentation layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class IssuedCard:
    uuid: str
    indicator: Literal["info", "warning", "critical"]
    finding: str | None = None
    trigger: str | None = None  # the results that raised it (ids and values); a new result is a new trigger
    grade: int = 0
    suggestion_uuids: tuple[str, ...] = ()
