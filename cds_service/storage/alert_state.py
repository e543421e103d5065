"""Alert-fatigue across workers: the database, not process memory, decides whether a card is shown.

A hook call screens all its cards inside its one transaction: it takes the lock on this patient for
this service (PostgreSQL: an advisory transaction lock; SQLite: the write lock, taken when the
transaction begins), reads the patient's alert state in one query, applies the pure policy to every
card and writes back what it showed. Two workers answering for the same patient take turns, so a
repeat is never shown twice and neither decides on the other's half-written state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import cast, overload

from sqlalchemy import ColumnElement, Connection, Executable, Table, bindparam, case, select, text, update

from cds_service.alert_fatigue import Candidate, LastShown, Policy, Suppressed, held_back
from cds_service.issued_card import IssuedCard
from cds_service.storage.models import AlertState
from cds_service.storage.sql import DIALECTS

# A declarative model's `__table__` is typed as a FromClause; for a mapped class with `__tablename__` it is
# always the Table itself, which is what `update()`, `insert()` and `primary_key` need.
STATE = cast(Table, AlertState.__table__)
LOCK = text("SELECT pg_advisory_xact_lock(:lock)")
LAST_SHOWN = select(STATE).where(
    (STATE.c.service_id == bindparam("service_id"))
    & (STATE.c.patient_key == bindparam("patient_key"))
    & STATE.c.finding.in_(bindparam("findings", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Screened:
    card: IssuedCard
    suppressed: Suppressed | None = None
    shown_before: datetime | None = None

    @property
    def shown(self) -> bool:
        return self.suppressed is None


@overload
def trigger_hash(trigger: str) -> str: ...
@overload
def trigger_hash(trigger: None) -> None: ...
def trigger_hash(trigger: str | None) -> str | None:
    return hashlib.sha256(trigger.encode()).hexdigest() if trigger is not None else None


def _key(service_id: str, finding: str, patient_key: str) -> ColumnElement[bool]:
    return (STATE.c.service_id == service_id) & (STATE.c.finding == finding) & (STATE.c.patient_key == patient_key)


def _lock_patient(connection: Connection, service_id: str, patient_key: str) -> None:
    """PostgreSQL: one hook call at a time per patient and service, until the transaction ends.
    SQLite needs nothing here: the transaction began with the database's write lock."""
    if connection.dialect.name == "postgresql":
        digest = hashlib.sha256(f"alert-state\0{service_id}\0{patient_key}".encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        connection.execute(LOCK, {"lock": lock})


def _last_shown(connection: Connection, service_id: str, patient_key: str, findings: list[str]) -> dict:
    """This patient's state for these findings, in one query (primary-key lookups)."""
    found = connection.execute(LAST_SHOWN, {"service_id": service_id, "patient_key": patient_key, "findings": findings})
    return {row.finding: row for row in found}


def _remember(connection: Connection, rows: list[dict]) -> None:
    connection.execute(_upsert(connection.dialect.name), rows)


@cache
def _upsert(dialect: str) -> Executable:
    """Upsert the showings. A snooze written meanwhile by feedback (it bumps `version`) is kept."""
    insert = DIALECTS[dialect].insert(STATE)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[column.name for column in STATE.primary_key.columns],
        set_={
            "trigger_hash": new.trigger_hash,
            "grade": new.grade,
            "last_shown_at": new.last_shown_at,
            "snoozed_until": case((STATE.c.version + 1 == new.version, None), else_=STATE.c.snoozed_until),
            "version": STATE.c.version + 1,
        },
    )


def screen_cards(
    connection: Connection,
    service_id: str,
    patient_key: str | None,
    cards: Sequence[IssuedCard],
    now: datetime,
    policy: Policy,
) -> list[Screened]:
    """Decide every card of one call; call inside the call's transaction (see `storage.engine.in_transaction`).
    Cards without a finding or triggering result, or a call without a patient, are always shown."""
    screenable = {c.finding for c in cards if c.finding is not None and c.trigger is not None}
    if patient_key is None or not screenable:
        return [Screened(card) for card in cards]
    _lock_patient(connection, service_id, patient_key)
    stored = _last_shown(connection, service_id, patient_key, sorted(screenable))
    last = {f: LastShown(r.trigger_hash, r.grade, r.last_shown_at, r.snoozed_until) for f, r in stored.items()}
    shown: dict[str, dict] = {}
    screened = []
    for card in cards:
        if card.finding not in screenable or card.trigger is None:
            screened.append(Screened(card))
            continue
        digest = trigger_hash(card.trigger)
        candidate = Candidate(card.indicator, digest, card.grade)
        before = last.get(card.finding)
        shown_before = before.at if before else None
        if reason := held_back(candidate, before, now, policy):
            screened.append(Screened(card, reason, shown_before))
            continue
        at = max(now, before.at) if before else now  # a call that took its turn late never moves time back
        last[card.finding] = LastShown(digest, card.grade, at)
        previous = stored.get(card.finding)
        shown[card.finding] = {
            "service_id": service_id,
            "finding": card.finding,
            "patient_key": patient_key,
            "trigger_hash": digest,
            "grade": card.grade,
            "last_shown_at": at,
            "snoozed_until": None,
            "version": previous.version + 1 if previous else 1,
        }
        screened.append(Screened(card, None, shown_before))
    if shown:
        _remember(connection, list(shown.values()))
    return screened


def snooze(connection: Connection, service_id: str, finding: str, patient_key: str, until: datetime) -> None:
    """An override with a reason: hold this finding back for this patient until `until` unless it worsens."""
    where = _key(service_id, finding, patient_key)
    connection.execute(
        update(STATE)
        .where(where & ((STATE.c.snoozed_until.is_(None)) | (STATE.c.snoozed_until < until)))
        .values(snoozed_until=until, version=STATE.c.version + 1)
    )
