"""Alert-fatigue across workers: the database, not process memory, decides whether a card is shown.

Each decision reads the last showing, applies the pure policy, then claims the showing with a
compare-and-swap (insert on the primary key, or update on `version`); a worker that loses a race
re-reads and decides again, so two workers never both show the same repeat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from cds_service.alert_fatigue import Candidate, LastShown, Policy, Suppressed, held_back
from cds_service.issued_card import IssuedCard
from cds_service.storage.models import AlertState
from cds_service.storage.sql import insert_unless_present

ATTEMPTS = 5
STATE = AlertState.__table__


@dataclass(frozen=True, slots=True)
class Screened:
    card: IssuedCard
    suppressed: Suppressed | None = None
    shown_before: datetime | None = None

    @property
    def shown(self) -> bool:
        return self.suppressed is None


def trigger_hash(trigger: str | None) -> str | None:
    return hashlib.sha256(trigger.encode()).hexdigest() if trigger is not None else None


def _key(service_id: str, finding: str, patient_key: str):
    return (STATE.c.service_id == service_id) & (STATE.c.finding == finding) & (STATE.c.patient_key == patient_key)


def _claim(connection: Connection, where, row, values: dict) -> bool:
    if row is None:
        return insert_unless_present(connection, STATE, {**values, "version": 1})
    statement = update(STATE).where(where & (STATE.c.version == row.version)).values(**values, version=row.version + 1)
    return connection.execute(statement).rowcount == 1


def screen_card(
    engine: Engine, service_id: str, patient_key: str | None, card: IssuedCard, now: datetime, policy: Policy
) -> Screened:
    if card.finding is None or patient_key is None or card.trigger is None:
        return Screened(card)
    candidate = Candidate(card.indicator, trigger_hash(card.trigger), card.grade)
    where = _key(service_id, card.finding, patient_key)
    values = {
        "service_id": service_id,
        "finding": card.finding,
        "patient_key": patient_key,
        "trigger_hash": candidate.trigger_hash,
        "grade": card.grade,
        "last_shown_at": now,
        "snoozed_until": None,
    }
    for _ in range(ATTEMPTS):
        with engine.connect() as connection:
            row = connection.execute(select(STATE).where(where)).first()
        last = LastShown(row.trigger_hash, row.grade, row.last_shown_at, row.snoozed_until) if row else None
        if reason := held_back(candidate, last, now, policy):
            return Screened(card, reason, last.at)
        with engine.begin() as connection:
            if _claim(connection, where, row, values):
                return Screened(card, None, last.at if last else None)
    return Screened(card)  # contention never hides a card


def snooze(connection: Connection, service_id: str, finding: str, patient_key: str, until: datetime) -> None:
    """An override with a reason: hold this finding back for this patient until `until` unless it worsens."""
    where = _key(service_id, finding, patient_key)
    connection.execute(
        update(STATE)
        .where(where & ((STATE.c.snoozed_until.is_(None)) | (STATE.c.snoozed_until < until)))
        .values(snoozed_until=until, version=STATE.c.version + 1)
    )
