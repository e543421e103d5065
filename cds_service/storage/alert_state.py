"""Alert-fatigue across workers: the database, not process memory, decides whether a card is shown.

A hook call screens all its cards inside its one transaction: it takes the lock on this patient for
this service (PostgreSQL: an advisory transaction lock; SQLite: the write lock, taken when the
transaction begins), reads the patient's alert state in one query and applies the pure policy to every
card; what it showed is written back with the call's audit row (`storage.audit.record_call`). Two
workers answering for the same patient take turns, so a repeat is never shown twice and neither
decides on the other's half-written state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast, overload

from sqlalchemy import ColumnElement, Connection, Table, update

from cds_service.alert_fatigue import Candidate, LastShown, Policy, Suppressed, held_back
from cds_service.issued_card import IssuedCard
from cds_service.storage.models import AlertState
from cds_service.storage.sql import bound, execute, parameter, pipelined, reader, row_parameters, values_rows

# A declarative model's `__table__` is typed as a FromClause; for a mapped class with `__tablename__` it is
# always the Table itself, which is what `update()`, `insert()` and `primary_key` need.
STATE = cast(Table, AlertState.__table__)
STATE_COLUMNS = tuple(column.name for column in STATE.columns)
READ_COLUMNS = ("finding", "trigger_hash", "grade", "last_shown_at", "snoozed_until", "version")


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


@cache
def _last_shown_sql(dialect: str, findings: int) -> str:
    wanted = ", ".join(parameter(dialect, f"finding_{i}") for i in range(findings))
    return (
        f"SELECT {', '.join(READ_COLUMNS)} FROM alert_state WHERE service_id = {parameter(dialect, 'service_id')} "
        f"AND patient_key = {parameter(dialect, 'patient_key')} AND finding IN ({wanted})"
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A finding's stored state: when it was last shown, and the row's version (feedback bumps it)."""

    shown: LastShown
    version: int


def _locked_last_shown(
    connection: Connection, service_id: str, patient_key: str, findings: list[str]
) -> dict[str, Stored]:
    """Take this patient's turn, then read their state for these findings in one query (primary-key lookups).

    PostgreSQL: an advisory transaction lock per patient and service, held until the transaction ends;
    BEGIN, the lock and the read go in one round trip, and the read is a statement of its own: a READ
    COMMITTED statement reads from a snapshot taken when it starts, so a read in the lock's statement
    could miss the state the previous holder just committed. SQLite: the transaction began with the
    database's write lock."""
    statement = _last_shown_sql(connection.dialect.name, len(findings))
    parameters = {"service_id": service_id, "patient_key": patient_key} | {
        f"finding_{i}": finding for i, finding in enumerate(findings)
    }
    if connection.dialect.name == "postgresql":
        digest = hashlib.sha256(f"alert-state\0{service_id}\0{patient_key}".encode()).digest()
        lock = {"lock": int.from_bytes(digest[:8], "big", signed=True)}
        rows = pipelined(connection, [("SELECT pg_advisory_xact_lock(%(lock)s)", lock), (statement, parameters)])
    else:
        rows = execute(connection, statement, parameters)
    as_time = reader(connection, STATE, "last_shown_at")
    return {
        finding: Stored(LastShown(digest, grade, as_time(at), as_time(snoozed)), version)
        for finding, digest, grade, at, snoozed, version in rows
    }


@cache
def upsert_sql(dialect: str, rows: int) -> str:
    """Upsert the showings. A snooze written meanwhile by feedback (it bumps `version`) is kept."""
    values = values_rows(dialect, "state", STATE_COLUMNS, rows)
    return (
        f"INSERT INTO alert_state ({', '.join(STATE_COLUMNS)}) VALUES {values} "
        "ON CONFLICT (service_id, finding, patient_key) DO UPDATE SET trigger_hash = excluded.trigger_hash, "
        "grade = excluded.grade, last_shown_at = excluded.last_shown_at, snoozed_until = CASE WHEN "
        "alert_state.version + 1 = excluded.version THEN NULL ELSE alert_state.snoozed_until END, "
        "version = alert_state.version + 1"
    )


def showing_parameters(connection: Connection, showings: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return row_parameters("state", (bound(connection, STATE, row) for row in showings), STATE_COLUMNS)


def remember(connection: Connection, showings: Sequence[dict[str, Any]]) -> None:
    """Write the showings `screen` decided, in one statement (the audit write does it on PostgreSQL)."""
    if showings:
        statement = upsert_sql(connection.dialect.name, len(showings))
        execute(connection, statement, showing_parameters(connection, showings))


def screen(
    connection: Connection,
    service_id: str,
    patient_key: str | None,
    cards: Sequence[IssuedCard],
    now: datetime,
    policy: Policy,
) -> tuple[list[Screened], list[dict[str, Any]]]:
    """Decide every card of one call, inside the call's transaction (see `storage.engine.in_transaction`):
    the decisions, and the showings to remember (`remember`, or `storage.audit.record_call` with the
    audit row). Cards without a finding or triggering result, or a call without a patient, are always shown."""
    screenable = {c.finding for c in cards if c.finding is not None and c.trigger is not None}
    if patient_key is None or not screenable:
        return [Screened(card) for card in cards], []
    stored = _locked_last_shown(connection, service_id, patient_key, sorted(screenable))
    last = {finding: s.shown for finding, s in stored.items()}
    shown: dict[str, dict[str, Any]] = {}
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
    return screened, list(shown.values())


def snooze(connection: Connection, service_id: str, finding: str, patient_key: str, until: datetime) -> None:
    """An override with a reason: hold this finding back for this patient until `until` unless it worsens."""
    where = _key(service_id, finding, patient_key)
    connection.execute(
        update(STATE)
        .where(where & ((STATE.c.snoozed_until.is_(None)) | (STATE.c.snoozed_until < until)))
        .values(snoozed_until=until, version=STATE.c.version + 1)
    )
