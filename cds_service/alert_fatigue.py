"""Alert-fatigue policy: whether a card is shown again, as a pure decision over what was shown before.

A card is held back when the same finding for the same patient was shown within the repeat window on
the same triggering result and is no worse, or while an override with a reason snoozes it and it is no
worse. Critical cards and cards without a triggering result (e.g. "data missing") are always shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Suppressed(StrEnum):
    REPEAT = "repeat"
    SNOOZED = "snoozed"


@dataclass(frozen=True, slots=True)
class Policy:
    repeat_window: timedelta


@dataclass(frozen=True, slots=True)
class LastShown:
    """What the database remembers of the last time this finding was shown for this patient."""

    trigger_hash: str
    grade: int
    at: datetime
    snoozed_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    indicator: str
    trigger_hash: str | None
    grade: int


def held_back(candidate: Candidate, last: LastShown | None, now: datetime, policy: Policy) -> Suppressed | None:
    """None to show the card; otherwise why it is held back."""
    if candidate.indicator == "critical" or candidate.trigger_hash is None or last is None:
        return None
    if candidate.grade > last.grade:
        return None
    if last.snoozed_until is not None and now < last.snoozed_until:
        return Suppressed.SNOOZED
    elapsed = max(now - last.at, timedelta(0))  # another worker's call may have taken a later timestamp
    if candidate.trigger_hash == last.trigger_hash and elapsed < policy.repeat_window:
        return Suppressed.REPEAT
    return None
